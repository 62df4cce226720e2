"""Exports: the image as PNG (with AUTOMATIC1111 parameters), JPEG or WebP; a run as an animated GIF or WebP;
the image on the clipboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtGui import QGuiApplication

from ..io.png import save_image
from ..state.qimages import to_qimage

IMAGE_FILTER = "PNG with parameters (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"
ANIMATION_FILTER = "Animated GIF (*.gif);;Animated WebP (*.webp)"
ANIMATION_MIN_SIDE = 256  # small previews are enlarged (nearest neighbour) so the animation is watchable
FRAME_MS = 80
LAST_FRAME_MS = 1200


def export_image(path: str | Path, image: np.ndarray, parameters: str | None) -> Path:
    """Save by extension; PNG keeps ``parameters`` in its text chunk, JPEG/WebP in EXIF UserComment."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    return save_image(path, image, parameters)


def _enlarge(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    pil = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    if pil.size == size:
        return pil
    smaller = pil.size[0] < size[0]
    return pil.resize(size, Image.Resampling.NEAREST if smaller else Image.Resampling.LANCZOS)


def export_animation(path: str | Path, frames: list[np.ndarray], final: np.ndarray | None = None) -> Path:
    """The steps of a run (then its result, held longer) as an animated GIF or WebP."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".gif")
    if path.suffix.lower() not in (".gif", ".webp"):
        raise ValueError(f"cannot save an animation as {path.name}: use a .gif or .webp file name")
    pictures = list(frames) + ([final] if final is not None else [])
    if not pictures:
        raise ValueError("there is no run to export yet: generate an image first")
    h, w = (final if final is not None else pictures[-1]).shape[:2]
    scale = max(1, -(-ANIMATION_MIN_SIDE // max(h, w)))
    size = (w * scale, h * scale)
    images = [_enlarge(f, size) for f in pictures]
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_FRAME_MS]
    options = {"save_all": True, "append_images": images[1:], "duration": durations, "loop": 0}
    if path.suffix.lower() == ".webp":
        options["lossless"] = True
    images[0].save(path, **options)
    return path


def copy_to_clipboard(image: np.ndarray) -> None:
    QGuiApplication.clipboard().setImage(to_qimage(image[..., :3]))
