"""The canvas document: the RGB image, the mask and the control layer, changed only through committed edits."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QImage

from ...state.qimages import rgb_owned
from .control_layer import ControlLayer, resize_nearest
from .mask_layer import Box, MaskLayer

MASK, CONTROL = "mask", "control"  # the layers a brush stroke can paint


class CanvasDocument(QObject):
    """Image + mask + control layer, with signals for edits that are complete.

    Live brush strokes paint ``mask_layer`` or ``control_layer`` directly (the view repaints them itself);
    everything that goes through this class is an applied edit or an undo/redo, so
    its signals are what the rest of the window should react to.
    """

    image_replaced = Signal()  # the image changed, possibly its size (the mask came along)
    mask_edited = Signal(object)  # the Box that changed, or None for the whole mask
    control_edited = Signal(object)  # the Box of the control layer that changed, or None for all of it

    def __init__(self, width: int = 512, height: int = 512, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mask_layer = MaskLayer(width, height, QColor(255, 60, 60))
        self.control_layer = ControlLayer(width, height)
        # Mid grey is what an empty canvas looks like before anything is loaded or generated.
        self._set_image_array(np.full((height, width, 3), 128, np.uint8))

    # -- image ------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self._image.shape[1]

    @property
    def height(self) -> int:
        return self._image.shape[0]

    @property
    def image(self) -> np.ndarray:
        """The live image array (read-only by convention)."""
        return self._image

    @property
    def qimage(self) -> QImage:
        return self._qimage

    def display_image(self, zoom: float) -> QImage:
        """The image to draw at ``zoom``: below 50 % a pre-halved copy (a mip level).

        Bilinear filtering alone aliases badly when shrinking more than 2x (fine
        detail shimmers as the view pans); Qt's smooth scale averages whole areas, so
        halving once per level and caching gives a clean zoomed-out view for the
        cost of one scale per level and document.
        """
        level = 0
        while zoom * (2 ** (level + 1)) <= 1.0 and min(self.width, self.height) >> (level + 1) >= 16:
            level += 1
        while len(self._mips) <= level:
            prev = self._mips[-1]
            half = prev.scaled(
                max(prev.width() // 2, 1),
                max(prev.height() // 2, 1),
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            self._mips.append(half)
        return self._mips[level]

    def _set_image_array(self, image: np.ndarray) -> None:
        self._image = image
        self._image.setflags(write=False)  # shared with undo commands: an in-place edit would corrupt history
        self._qimage = rgb_owned(image)
        self._mips = [self._qimage]

    def set_state(self, image: np.ndarray, mask: np.ndarray | None, control: np.ndarray | None = None) -> None:
        """Replace image, mask and control layer together (all the document's new size; None = empty)."""
        h, w = image.shape[:2]
        self._set_image_array(image)
        if (self.mask_layer.height, self.mask_layer.width) != (h, w):
            self.mask_layer.reset(w, h)
            self.control_layer.reset(w, h)
        self._put_mask(mask)
        self.control_layer.replace(control)
        self.image_replaced.emit()

    def state(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(image, mask, control) as set_state takes them: what an undo step keeps."""
        return self._image, self.mask_snapshot(), self.control_snapshot()

    # -- control layer ----------------------------------------------------------------------
    def control_snapshot(self) -> np.ndarray | None:
        """A copy of the control layer, or None when nothing is drawn on it."""
        return None if self.control_layer.is_empty() else self.control_layer.array.copy()

    def control_at_size(self, width: int, height: int) -> np.ndarray | None:
        """The control layer for a document of another size (stretched, nearest pixel), None when empty."""
        snapshot = self.control_snapshot()
        return None if snapshot is None else resize_nearest(snapshot, width, height)

    def replace_control(self, control: np.ndarray | None) -> None:
        self.control_layer.replace(control)
        self.control_edited.emit(None)

    def write_layer(self, layer: str, box: Box, values: np.ndarray) -> None:
        """Put back a stroke's pixels on ``layer`` (MASK or CONTROL): undo and redo of a stroke."""
        if layer == CONTROL:
            self.control_layer.write(box, values)
            self.control_edited.emit(box)
        else:
            self.write_mask(box, values)

    # -- mask -------------------------------------------------------------------------------
    def mask_snapshot(self) -> np.ndarray | None:
        """A copy of the mask, or None when it is empty (empty masks cost no undo memory)."""
        return None if self.mask_layer.is_empty() else self.mask_layer.array.copy()

    def replace_mask(self, mask: np.ndarray | None) -> None:
        self._put_mask(mask)
        self.mask_edited.emit(None)

    def write_mask(self, box: Box, values: np.ndarray) -> None:
        self.mask_layer.write(box, values)
        self.mask_edited.emit(box)

    def _put_mask(self, mask: np.ndarray | None) -> None:
        if mask is None:
            self.mask_layer.replace(np.zeros((self.mask_layer.height, self.mask_layer.width), np.float32))
        else:
            self.mask_layer.replace(mask)
