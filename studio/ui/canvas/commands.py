"""Undo commands for the canvas: each is one step in the QUndoStack."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QUndoCommand

from .document import MASK, CanvasDocument
from .mask_layer import Box


class StrokeCommand(QUndoCommand):
    """A whole brush or eraser stroke, press to release, on the mask or the control layer.

    Stores only the touched box before and after, so long painting sessions on a
    large document stay cheap in memory. The stroke is already on its layer when the
    command is pushed, so the first redo (QUndoStack.push calls it) does nothing.
    """

    def __init__(self, doc: CanvasDocument, box: Box, before: np.ndarray, after: np.ndarray, text: str,
                 layer: str = MASK) -> None:
        super().__init__(text)
        self._doc, self._box, self._before, self._after, self._layer = doc, box, before, after, layer
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self._doc.write_layer(self._layer, self._box, self._after)

    def undo(self) -> None:
        self._doc.write_layer(self._layer, self._box, self._before)


class MaskCommand(QUndoCommand):
    """Replace the whole mask (clear, invert, set_mask). None stands for an empty mask.

    Both states are stored rather than recomputed: 1 - (1 - x) is not always x in
    float32, and undo must restore the mask bit for bit.
    """

    def __init__(self, doc: CanvasDocument, before: np.ndarray | None, after: np.ndarray | None, text: str) -> None:
        super().__init__(text)
        self._doc, self._before, self._after = doc, before, after

    def redo(self) -> None:
        self._doc.replace_mask(self._after)

    def undo(self) -> None:
        self._doc.replace_mask(self._before)


class ControlCommand(QUndoCommand):
    """Replace the whole control layer (load an image into it, clear it). None stands for an empty layer."""

    def __init__(self, doc: CanvasDocument, before: np.ndarray | None, after: np.ndarray | None, text: str) -> None:
        super().__init__(text)
        self._doc, self._before, self._after = doc, before, after

    def redo(self) -> None:
        self._doc.replace_control(self._after)

    def undo(self) -> None:
        self._doc.replace_control(self._before)


# (image, mask, control layer) as CanvasDocument.set_state takes them.
DocumentState = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


class DocumentCommand(QUndoCommand):
    """Replace image, mask and control layer together (set_image, extend): sizes may change."""

    def __init__(self, doc: CanvasDocument, before: DocumentState, after: DocumentState, text: str) -> None:
        super().__init__(text)
        self._doc, self._before, self._after = doc, before, after

    def redo(self) -> None:
        self._doc.set_state(*self._after)

    def undo(self) -> None:
        self._doc.set_state(*self._before)
