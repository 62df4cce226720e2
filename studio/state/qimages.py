"""numpy <-> QImage for the whole UI: views that read an array in place, owned copies, and back."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    """A C-contiguous uint8 HxWx3 view or copy of ``img``.

    Accepts greyscale HxW, HxWx1, RGB and RGBA (alpha dropped: the document is opaque),
    and float images in [0, 1], because previews from samplers arrive in any of these.
    """
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)


def rgb_view(arr: np.ndarray) -> QImage:
    """A QImage that reads ``arr`` (uint8 HxWx3, C-contiguous) in place.

    The QImage does not own the pixels: the caller must keep ``arr`` alive and unchanged
    for as long as the QImage is used.
    """
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888)


def to_qimage(image: np.ndarray) -> QImage:
    """Any image ``to_rgb_uint8`` takes -> a QImage that owns its pixels (RGB888)."""
    return rgb_view(to_rgb_uint8(image)).copy()


def rgb_owned(arr: np.ndarray) -> QImage:
    """An owned RGB32 QImage of ``arr``: the raster engine draws RGB32 fastest (the canvas document)."""
    return rgb_view(to_rgb_uint8(arr)).convertToFormat(QImage.Format.Format_RGB32)


def from_qimage(image: QImage) -> np.ndarray:
    """Any QImage -> uint8 [H, W, 3] (a copy)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    data = np.frombuffer(rgb.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return data[:, : 3 * w].reshape(h, w, 3).copy()
