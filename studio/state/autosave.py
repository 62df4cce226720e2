"""Autosave of the working document: canvas image, mask, control layer and panel, restored after a crash or kill -9.

The parts are one file, autosave.zip (image.png, mask.png, control.png, panel.json), written to a temp
file and renamed into place: a kill at any moment leaves either the previous autosave or the new
one, never the image of one moment beside the prompt of another (as three separate files could).
A zip rather than a folder with a manifest: one rename is the whole commit, nothing is left to
clean up between the parts, and any unzip tool gets the picture back out.

Studios before this kept image.png, mask.png and panel.json side by side; those are read once,
when no autosave.zip exists yet, and removed by the first new save.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..io.safe_json import loads_limited
from .files import set_aside, write_atomic
from .panel_values import PanelValues

IMAGE, MASK, CONTROL, PANEL = "image.png", "mask.png", "control.png", "panel.json"
MAX_PART_BYTES = 512 * 1024 * 1024  # far above any canvas the studio makes; a larger part is damage
# What zipfile and Pillow raise for a damaged file besides OSError and ValueError.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                Image.DecompressionBombError, SyntaxError)


class AutosaveError(ValueError):
    """The autosave on disk cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, eq=False)
class Snapshot:
    image: np.ndarray | None
    mask: np.ndarray | None  # float32 [H, W] in [0, 1]
    panel: PanelValues | None
    control: np.ndarray | None = None  # uint8 [H, W, 3], the ControlNet control layer (black is empty)


EMPTY = Snapshot(None, None, None)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _decode_image(data: bytes, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        if size is not None and img.size != size:
            raise ValueError(f"is {img.size[0]}x{img.size[1]}, the image {size[0]}x{size[1]}")
        return np.asarray(img.convert(mode))


class Autosave:
    def __init__(self, folder: Path):
        self.folder = folder

    @property
    def file(self) -> Path:
        return self.folder / "autosave.zip"

    @property
    def old_files(self) -> tuple[Path, Path, Path]:
        """The layout before autosave.zip: image, mask, panel side by side."""
        return self.folder / IMAGE, self.folder / MASK, self.folder / PANEL

    def save(self, snapshot: Snapshot) -> None:
        parts: dict[str, bytes] = {}
        if snapshot.image is not None:
            parts[IMAGE] = _png_bytes(np.ascontiguousarray(snapshot.image[..., :3]))
        if snapshot.mask is not None:
            parts[MASK] = _png_bytes((np.clip(snapshot.mask, 0, 1) * 255).round().astype(np.uint8))
        if snapshot.control is not None:
            parts[CONTROL] = _png_bytes(np.ascontiguousarray(snapshot.control[..., :3]))
        if snapshot.panel is not None:
            parts[PANEL] = json.dumps(snapshot.panel.to_json(), ensure_ascii=False).encode("utf-8")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
            for name, data in parts.items():
                archive.writestr(name, data)
        write_atomic(self.file, buffer.getvalue())
        for old in self.old_files:  # the upgrade is done once the new file is in place
            old.unlink(missing_ok=True)

    def load(self) -> Snapshot:
        """What was saved (parts never saved are None); AutosaveError when the file is damaged."""
        if self.file.exists():
            return self._load_zip()
        if any(p.exists() for p in self.old_files):
            return self._load_old_layout()
        return EMPTY

    def recover(self) -> tuple[Snapshot, str | None]:
        """``load`` at start: a damaged autosave is set aside (kept for the user) and a message says so."""
        if self.file.exists():  # old files beside autosave.zip: a kill came between the upgrade's save and cleanup
            for old in self.old_files:
                old.unlink(missing_ok=True)
        try:
            return self.load(), None
        except AutosaveError as exc:
            damaged = [self.file] if self.file.exists() else [p for p in self.old_files if p.exists()]
            where = "; ".join(set_aside(p) for p in damaged)
            return EMPTY, f"The autosaved document could not be restored ({exc}); {where}."

    def _load_zip(self) -> Snapshot:
        try:
            with zipfile.ZipFile(self.file) as archive:
                parts = {}
                for info in archive.infolist():
                    if info.filename in (IMAGE, MASK, CONTROL, PANEL):
                        if info.file_size > MAX_PART_BYTES:
                            raise ValueError(f"{info.filename} claims {info.file_size:,} bytes")
                        parts[info.filename] = archive.read(info)
            return self._decode(parts)
        except _READ_ERRORS as exc:
            raise AutosaveError(f"{self.file.name}: {exc}") from None

    def _load_old_layout(self) -> Snapshot:
        parts = {}
        for path in self.old_files:
            try:
                if path.exists():
                    if path.stat().st_size > MAX_PART_BYTES:
                        raise ValueError(f"is {path.stat().st_size:,} bytes")
                    parts[path.name] = path.read_bytes()
            except _READ_ERRORS as exc:
                raise AutosaveError(f"{path.name}: {exc}") from None
        try:
            return self._decode(parts)
        except _READ_ERRORS as exc:
            raise AutosaveError(str(exc)) from None

    @staticmethod
    def _decode(parts: dict[str, bytes]) -> Snapshot:
        image = mask = control = panel = None
        if IMAGE in parts:
            try:
                image = _decode_image(parts[IMAGE], "RGB")
            except _READ_ERRORS as exc:
                raise ValueError(f"{IMAGE} {exc}") from None
        if MASK in parts and image is not None:  # a mask belongs to its image; alone it means nothing
            try:
                mask = _decode_image(parts[MASK], "L", (image.shape[1], image.shape[0])).astype(np.float32) / 255.0
            except _READ_ERRORS as exc:
                raise ValueError(f"{MASK} {exc}") from None
        if CONTROL in parts and image is not None:  # drawn over its image, like the mask
            try:
                control = _decode_image(parts[CONTROL], "RGB", (image.shape[1], image.shape[0]))
            except _READ_ERRORS as exc:
                raise ValueError(f"{CONTROL} {exc}") from None
        if PANEL in parts:
            try:
                panel = PanelValues.from_json(loads_limited(parts[PANEL]))
            except ValueError as exc:
                raise ValueError(f"{PANEL} {exc}") from None
        return Snapshot(image, mask, panel, control)
