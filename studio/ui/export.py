"""Exports: the image as PNG (with AUTOMATIC1111 parameters), JPEG or WebP; the image on the clipboard.

A run as an animated GIF or WebP is plain Pillow work: studio.io.animation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QGuiApplication

from ..io.png import save_image
from ..state.qimages import to_qimage

IMAGE_FILTER = "PNG with parameters (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"
ANIMATION_FILTER = "Animated GIF (*.gif);;Animated WebP (*.webp)"


def export_image(path: str | Path, image: np.ndarray, parameters: str | None) -> Path:
    """Save by extension; PNG keeps ``parameters`` in its text chunk, JPEG/WebP in EXIF UserComment."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    return save_image(path, image, parameters)


def copy_to_clipboard(image: np.ndarray) -> None:
    QGuiApplication.clipboard().setImage(to_qimage(image[..., :3]))
