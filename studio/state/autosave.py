"""Autosave of the working document: canvas image, mask and panel, restored after a crash or kill -9.

Each file is written atomically, so a kill mid-save keeps the previous copy.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .files import write_atomic, write_text_atomic
from .panel_values import PanelValues


@dataclass(frozen=True, eq=False)
class Snapshot:
    image: np.ndarray | None
    mask: np.ndarray | None  # float32 [H, W] in [0, 1]
    panel: PanelValues | None


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Autosave:
    def __init__(self, folder: Path):
        self.folder = folder

    @property
    def image_file(self) -> Path:
        return self.folder / "image.png"

    @property
    def mask_file(self) -> Path:
        return self.folder / "mask.png"

    @property
    def panel_file(self) -> Path:
        return self.folder / "panel.json"

    def save(self, snapshot: Snapshot) -> None:
        if snapshot.image is not None:
            write_atomic(self.image_file, _png_bytes(np.ascontiguousarray(snapshot.image[..., :3])))
        if snapshot.mask is not None:
            write_atomic(self.mask_file, _png_bytes((np.clip(snapshot.mask, 0, 1) * 255).round().astype(np.uint8)))
        else:
            self.mask_file.unlink(missing_ok=True)
        if snapshot.panel is not None:
            write_text_atomic(self.panel_file, json.dumps(snapshot.panel.to_json(), ensure_ascii=False))

    def load(self) -> Snapshot:
        """What was saved; any part that is missing or unreadable comes back as None."""
        image = mask = panel = None
        try:
            with Image.open(self.image_file) as img:
                image = np.asarray(img.convert("RGB"))
        except (OSError, ValueError):
            pass
        try:
            with Image.open(self.mask_file) as img:
                mask = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        except (OSError, ValueError):
            pass
        if image is not None and mask is not None and mask.shape != image.shape[:2]:
            mask = None
        try:
            panel = PanelValues.from_json(json.loads(self.panel_file.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
        return Snapshot(image, mask, panel)
