"""Making an image larger: Lanczos always, upscaler model files (ESRGAN and kin) when the user has them.

The one entry point the runner (hires fix), the command line and the UI call is ``upscale_image``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

LANCZOS = "lanczos"


def upscale_image(image: np.ndarray, scale: float, upscaler: str = LANCZOS) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [round(H * scale), round(W * scale), 3] with the named upscaler."""
    if upscaler.lower() != LANCZOS:
        raise ValueError(f"unknown upscaler {upscaler!r}; available: {LANCZOS}")
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3])).resize(size, Image.Resampling.LANCZOS))
