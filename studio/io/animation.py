"""A denoising run as an animated GIF or WebP: plain Pillow work, no Qt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ANIMATION_SUFFIXES = (".gif", ".webp")
MIN_SIDE = 256  # small previews are enlarged (nearest neighbour) so the animation is watchable
FRAME_MS = 80
LAST_FRAME_MS = 1200  # the result stays on screen before the loop starts again


def _resized(frame: np.ndarray, size: tuple[int, int]) -> Image.Image:
    pil = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    if pil.size == size:
        return pil
    smaller = pil.size[0] < size[0]
    return pil.resize(size, Image.Resampling.NEAREST if smaller else Image.Resampling.LANCZOS)


def save_animation(path: str | Path, frames: list[np.ndarray], final: np.ndarray | None = None) -> Path:
    """The steps of a run (uint8 [H, W, 3] previews, then its result, held longer) as an animated GIF or WebP.

    Every frame takes the size of the result (or of the last frame): previews of a
    latent model are smaller than its images. A name without a suffix becomes a .gif.
    """
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".gif")
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise ValueError(f"cannot save an animation as {path.name}: use a .gif or .webp file name")
    pictures = list(frames) + ([final] if final is not None else [])
    if not pictures:
        raise ValueError("there is no run to export yet: generate an image first")
    h, w = pictures[-1].shape[:2]
    scale = max(1, -(-MIN_SIDE // max(h, w)))
    size = (w * scale, h * scale)
    images = [_resized(f, size) for f in pictures]
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_FRAME_MS]
    options = {"save_all": True, "append_images": images[1:], "duration": durations, "loop": 0}
    if path.suffix.lower() == ".webp":
        options["lossless"] = True
    images[0].save(path, **options)
    return path
