"""Undo commands for the canvas: each is one step in the QUndoStack."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QUndoCommand

from .document import CanvasDocument
from .mask_layer import Box


class StrokeCommand(QUndoCommand):
    """A whole brush or eraser stroke, press to release.

    Stores only the touched box before and after, so long painting sessions on a
    large document stay cheap in memory. The stroke is already on the mask when the
    command is pushed, so the first redo (QUndoStack.push calls it) does nothing.
    """

    def __init__(self, doc: CanvasDocument, box: Box, before: np.ndarray, after: np.ndarray, text: str) -> None:
        super().__init__(text)
        self._doc, self._box, self._before, self._after = doc, box, before, after
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self._doc.write_mask(self._box, self._after)

    def undo(self) -> None:
        self._doc.write_mask(self._box, self._before)


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


class DocumentCommand(QUndoCommand):
    """Replace image and mask together (set_image, extend): sizes may change."""

    def __init__(
        self,
        doc: CanvasDocument,
        before: tuple[np.ndarray, np.ndarray | None],
        after: tuple[np.ndarray, np.ndarray | None],
        text: str,
    ) -> None:
        super().__init__(text)
        self._doc, self._before, self._after = doc, before, after

    def redo(self) -> None:
        self._doc.set_state(*self._after)

    def undo(self) -> None:
        self._doc.set_state(*self._before)
