"""The canvas of the studio window: the document image, its inpainting mask, zoom and pan.

Public API: ``CanvasView`` (the widget) and ``CanvasToolbar`` (its tool strip).
numpy and Qt only; never torch.
"""

from .canvas_view import CanvasView
from .toolbar import CanvasToolbar
from .tools import Tool

__all__ = ["CanvasView", "CanvasToolbar", "Tool"]
