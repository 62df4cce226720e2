"""The history of finished images, kept in the user data folder across restarts.

Each entry is three files sharing a name: the PNG with its parameters embedded
(readable by other tools), a small thumbnail, and a JSON sidecar with the panel
values. Entries whose files are damaged are skipped, never fatal; at start ``tidy``
moves them to set-aside/ and removes what a kill left half-written.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from ..io.png import load_image, save_image
from ..io.safe_json import load_json_file
from .background_writer import BackgroundWriter
from .files import STALE_AFTER_S, remove_stale_temp_files, write_text_atomic
from .panel_values import PanelValues
from .qimages import to_qimage

THUMB_SIDE = 96
SET_ASIDE = "set-aside"  # the history folder's subfolder for entries whose sidecar cannot be read
ENTRY_ID = re.compile(r"\d{8}-\d{6}-\d{3}(?:-\d+)?")  # what new_entry names; tidy deletes nothing else


@dataclass(frozen=True)
class HistoryEntry:
    entry_id: str
    folder: Path
    values: PanelValues
    parameters: str
    model_label: str
    created: float
    width: int
    height: int

    @property
    def image_file(self) -> Path:
        return self.folder / f"{self.entry_id}.png"

    @property
    def thumb_file(self) -> Path:
        return self.folder / f"{self.entry_id}.thumb.png"

    @property
    def meta_file(self) -> Path:
        return self.folder / f"{self.entry_id}.json"

    def load_image(self) -> np.ndarray:
        """The entry's image; ValueError when it cannot be read or is not the size its sidecar records
        (a damaged or replaced file: decoding it could take seconds for nothing)."""
        if self.width and self.height:
            try:
                with Image.open(self.image_file) as img:
                    size = img.size
            except (OSError, Image.DecompressionBombError) as exc:
                raise ValueError(f"cannot read image {self.image_file.name}: {exc}") from exc
            if size != (self.width, self.height):
                raise ValueError(f"{self.image_file.name} is {size[0]}x{size[1]}, but its history entry says "
                                 f"{self.width}x{self.height}: the file was replaced or damaged")
        return load_image(self.image_file)


class HistoryStore:
    """The files behind the history, newest entry first."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._reserved: set[str] = set()

    def new_entry(self, image: np.ndarray, values: PanelValues, parameters: str, model_label: str) -> HistoryEntry:
        """An entry with a fresh unique name; ``write`` puts its files on disk."""
        self.folder.mkdir(parents=True, exist_ok=True)
        created = time.time()
        stem = time.strftime("%Y%m%d-%H%M%S", time.localtime(created)) + f"-{int(created * 1000) % 1000:03d}"
        entry_id, n = stem, 1
        while (self.folder / f"{entry_id}.json").exists() or entry_id in self._reserved:
            n += 1
            entry_id = f"{stem}-{n}"
        self._reserved.add(entry_id)
        return HistoryEntry(entry_id, self.folder, values, parameters, model_label, created,
                            int(image.shape[1]), int(image.shape[0]))

    @staticmethod
    def write(entry: HistoryEntry, image: np.ndarray, thumbnail: np.ndarray | None = None) -> None:
        save_image(entry.image_file, image, entry.parameters)
        Image.fromarray(thumbnail if thumbnail is not None else make_thumbnail(image)).save(entry.thumb_file)
        meta = {"values": entry.values.to_json(), "parameters": entry.parameters, "model_label": entry.model_label,
                "created": entry.created, "width": entry.width, "height": entry.height}
        # The sidecar goes last: an entry counts only once its image is on disk.
        write_text_atomic(entry.meta_file, json.dumps(meta, ensure_ascii=False, indent=1))

    def add(self, image: np.ndarray, values: PanelValues, parameters: str, model_label: str) -> HistoryEntry:
        entry = self.new_entry(image, values, parameters, model_label)
        self.write(entry, image)
        return entry

    def entries(self) -> list[HistoryEntry]:
        found = []
        for meta_file in self._sidecars():
            try:
                entry = self.read_entry(meta_file)
            except (OSError, ValueError):
                continue
            if entry.image_file.exists():
                found.append(entry)
        return sorted(found, key=lambda e: (e.created, e.entry_id), reverse=True)

    def read_entry(self, meta_file: Path) -> HistoryEntry:
        """The entry a sidecar describes; ValueError (JSONFileError) when it is not a JSON object.

        Fields of the wrong type fall back one by one: the entry still shows, with what could be read."""
        meta = load_json_file(meta_file)
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_file.name} does not hold a JSON object")

        def text(key: str) -> str:
            value = meta.get(key)
            return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else ""

        def number(key: str) -> float:
            value = meta.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return 0.0
            try:
                value = float(value)  # an int of 400 digits raises OverflowError here
            except OverflowError:
                return 0.0
            return value if math.isfinite(value) else 0.0

        def size(key: str) -> int:
            value = meta.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31 else 0

        return HistoryEntry(meta_file.stem, self.folder, PanelValues.from_json(meta.get("values")),
                            text("parameters"), text("model_label"), number("created"), size("width"),
                            size("height"))

    def tidy(self, older_than_s: float = STALE_AFTER_S) -> str | None:
        """At start: entries whose sidecar cannot be read go to set-aside/ (kept for the user), and what a
        kill left half-written is removed: temp files, images without their sidecar and sidecars without
        their image (``older_than_s`` spares a write another studio window may be in the middle of).
        Returns a message for the window when something was set aside."""
        if not self.folder.is_dir():
            return None
        remove_stale_temp_files(self.folder, older_than_s)
        set_aside: list[str] = []
        for meta_file in self._sidecars():
            try:
                self.read_entry(meta_file)
            except (OSError, ValueError):
                if self._move_aside(meta_file.stem):
                    set_aside.append(meta_file.name)
        cutoff = time.time() - older_than_s
        for path in list(self.folder.iterdir()):
            entry_id = path.name.removesuffix(".thumb.png").removesuffix(".png").removesuffix(".json")
            if not ENTRY_ID.fullmatch(entry_id) or path.name == entry_id:
                continue
            has_meta = (self.folder / f"{entry_id}.json").exists()
            has_image = (self.folder / f"{entry_id}.png").exists()
            if has_meta and has_image:
                continue
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
        if not set_aside:
            return None
        names = ", ".join(set_aside[:3]) + (f" and {len(set_aside) - 3} more" if len(set_aside) > 3 else "")
        return (f"{len(set_aside)} history {'entry' if len(set_aside) == 1 else 'entries'} could not be read "
                f"({names}); moved to {self.folder / SET_ASIDE}.")

    def _sidecars(self) -> list[Path]:
        try:
            return sorted(p for p in self.folder.glob("*.json") if p.is_file())
        except OSError:
            return []

    def _move_aside(self, entry_id: str) -> bool:
        aside = self.folder / SET_ASIDE
        moved = False
        for name in (f"{entry_id}.json", f"{entry_id}.png", f"{entry_id}.thumb.png"):
            path = self.folder / name
            if not path.exists():
                continue
            try:
                aside.mkdir(exist_ok=True)
                target = aside / name
                if target.exists():
                    target = aside / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
                path.replace(target)
                moved = True
            except OSError:
                continue
        return moved

    def delete(self, entry: HistoryEntry) -> None:
        for path in (entry.meta_file, entry.image_file, entry.thumb_file):
            path.unlink(missing_ok=True)


def make_thumbnail(image: np.ndarray) -> np.ndarray:
    """The image fitted into THUMB_SIDE: smooth when shrinking, crisp pixels when enlarging a small one."""
    pil = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    w, h = pil.size
    if max(w, h) > THUMB_SIDE:
        scale = THUMB_SIDE / max(w, h)
        # reducing_gap: box-reduce first, then Lanczos; a large grid shrinks in milliseconds, not seconds.
        pil = pil.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS,
                         reducing_gap=3.0)
    elif max(w, h) * 2 <= THUMB_SIDE:
        factor = THUMB_SIDE // max(w, h)
        pil = pil.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    return np.asarray(pil)


class HistoryModel(QAbstractListModel):
    """History entries for list views: prompt as text, thumbnail as decoration, parameters as tooltip."""

    EntryRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, store: HistoryStore, writer: BackgroundWriter | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.store = store
        self.writer = writer or BackgroundWriter()
        self._entries = store.entries()
        self._thumbs: dict[str, object] = {}
        self._deleted: list[HistoryEntry] = []  # out of the list, files still on disk: undo brings them back

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            # The whole first line: the view wraps it under the thumbnail and elides what does not fit;
            # the tooltip (the parameters, prompt first) has all of it.
            return entry.values.prompt.strip().splitlines()[0] if entry.values.prompt.strip() else "(no prompt)"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumb(entry)
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.parameters
        if role == self.EntryRole:
            return entry
        return None

    def entry(self, row: int) -> HistoryEntry:
        return self._entries[row]

    def entries(self) -> list[HistoryEntry]:
        return list(self._entries)

    def add(self, image: np.ndarray, values: PanelValues, parameters: str, model_label: str,
            on_error: Callable[[BaseException], None] | None = None) -> HistoryEntry:
        """Show the entry at once; its files are written on the background writer."""
        from PySide6.QtGui import QPixmap

        entry = self.store.new_entry(image, values, parameters, model_label)
        thumbnail = make_thumbnail(image)
        self._thumbs[entry.entry_id] = QPixmap.fromImage(to_qimage(thumbnail))
        self.writer.submit(lambda: self.store.write(entry, image, thumbnail), on_error)
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._entries.insert(0, entry)
        self.endInsertRows()
        return entry

    def delete(self, row: int) -> HistoryEntry:
        """Take the entry out of the list; its files stay until ``purge_deleted`` so that
        ``undo_delete`` can bring it back (a kill before the purge brings it back at the next start)."""
        entry = self._entries[row]
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._entries[row]
        self.endRemoveRows()
        self._deleted.append(entry)
        return entry

    def can_undo_delete(self) -> bool:
        return bool(self._deleted)

    def undo_delete(self) -> HistoryEntry | None:
        """Put the most recently deleted entry back in its place (newest first); its row is ``row_of``."""
        if not self._deleted:
            return None
        entry = self._deleted.pop()
        key = (entry.created, entry.entry_id)
        row = next((i for i, e in enumerate(self._entries) if (e.created, e.entry_id) < key), len(self._entries))
        self.beginInsertRows(QModelIndex(), row, row)
        self._entries.insert(row, entry)
        self.endInsertRows()
        return entry

    def row_of(self, entry: HistoryEntry) -> int:
        return next((i for i, e in enumerate(self._entries) if e.entry_id == entry.entry_id), -1)

    def purge_deleted(self) -> None:
        """Delete the files of the deleted entries (on the writer); they cannot be brought back after this."""
        for entry in self._deleted:
            self._thumbs.pop(entry.entry_id, None)
            self.writer.submit(lambda entry=entry: self.store.delete(entry))
        self._deleted.clear()

    def _thumb(self, entry: HistoryEntry):
        from PySide6.QtGui import QPixmap

        if entry.entry_id not in self._thumbs:
            pixmap = QPixmap(str(entry.thumb_file))
            if pixmap.isNull():
                try:
                    pixmap = QPixmap.fromImage(to_qimage(make_thumbnail(entry.load_image())))
                except ValueError:
                    pixmap = QPixmap()
            self._thumbs[entry.entry_id] = pixmap
        return self._thumbs[entry.entry_id]
