"""The ControlNet control layer: an RGB raster the user scribbles on or loads an image into.

Black is empty: the control map a scribble or lineart ControlNet reads is white lines on black,
so what the layer holds is exactly the control image the engine gets. The brush paints white,
the eraser black; both composite with max/min like the mask, so a soft stroke never builds up
at the joints between mouse moves and painting is idempotent where a stroke crosses itself.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from ...state.qimages import rgb_view
from .brush import segment_coverage
from .mask_layer import Box


def resize_nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` (H x W x C) at a new size, nearest pixel: a scribble's hard lines stay hard."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image.copy()
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.intp)
    return np.ascontiguousarray(image[rows[:, None], cols[None, :]])


class ControlLayer:
    """uint8 H x W x 3, black where nothing is drawn, with a QImage over the same pixels for display."""

    def __init__(self, width: int, height: int) -> None:
        self.reset(width, height)

    @property
    def width(self) -> int:
        return self._rgb.shape[1]

    @property
    def height(self) -> int:
        return self._rgb.shape[0]

    def reset(self, width: int, height: int) -> None:
        """An empty (black) layer of a new size."""
        self._rgb = np.zeros((height, width, 3), np.uint8)
        self._image = rgb_view(self._rgb)

    @property
    def array(self) -> np.ndarray:
        """The live pixels (not a copy): callers change them only through the edit methods."""
        return self._rgb

    def image(self) -> QImage:
        """The layer as a QImage reading the layer's buffer (valid until the next reset)."""
        return self._image

    def is_empty(self) -> bool:
        return not bool(self._rgb.any())

    def full_box(self) -> Box:
        return (0, 0, self.width, self.height)

    def read(self, box: Box) -> np.ndarray:
        left, top, right, bottom = box
        return self._rgb[top:bottom, left:right].copy()

    def write(self, box: Box, values: np.ndarray) -> Box:
        left, top, right, bottom = box
        self._rgb[top:bottom, left:right] = values
        return box

    def replace(self, rgb: np.ndarray | None) -> Box:
        """Set every pixel (None: empty); ``rgb`` must be uint8 at the layer's size."""
        if rgb is None:
            self._rgb[...] = 0
        else:
            if rgb.shape != self._rgb.shape:
                raise ValueError(f"control image shape {rgb.shape} does not match the canvas {self._rgb.shape}")
            np.copyto(self._rgb, rgb, casting="unsafe")
        return self.full_box()

    def paint_segment(
        self, x0: float, y0: float, x1: float, y1: float, diameter: float, hardness: float, erase: bool,
        end_diameter: float | None = None,
    ) -> Box | None:
        """Draw white (or, erasing, black) along the capsule from (x0, y0) to (x1, y1)."""
        hit = segment_coverage(x0, y0, x1, y1, diameter, hardness, self.width, self.height, end_diameter)
        if hit is None:
            return None
        box, cov = hit
        left, top, right, bottom = box
        region = self._rgb[top:bottom, left:right]
        if erase:
            level = ((1.0 - cov) * 255.0 + 0.5).astype(np.uint8)
            np.minimum(region, level[:, :, None], out=region)
        else:
            level = (cov * 255.0 + 0.5).astype(np.uint8)
            np.maximum(region, level[:, :, None], out=region)
        return box
