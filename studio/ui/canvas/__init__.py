"""The canvas of the studio window: the document image, its inpainting mask, zoom and pan.

Public API (numpy and Qt only; never torch):

``CanvasView(parent=None)``, a QWidget:
    set_image(img, *, undoable=True), image(), image_size(); mask() -> float32 HxW or None,
    set_mask(m, *, undoable=True), clear_mask(), invert_mask(), has_mask();
    show_frame(img), show_document(), is_showing_frame();
    extend(left, top, right, bottom, *, fill="edge"|"grey"); undo_stack();
    set_tool("brush"|"eraser"), tool(), brush_size (property) / set_brush_size(px),
    hardness (property) / set_hardness(h), set_overlay(color=None, opacity=None),
    overlay_color(), overlay_opacity(); zoom(), zoom_fit(), zoom_100(), set_zoom(z), zoom_by(f, anchor=None);
    map_to_image(p), map_from_image(p).
    Signals: mask_changed(), image_changed(), image_dropped(str), status_message(str), zoom_changed(float),
    tool_changed(str), brush_size_changed(int), hardness_changed(float), overlay_changed(),
    pixel_hovered(int x, int y, float mask).

``CanvasToolbar(canvas, parent=None)``: the tool strip to dock above the canvas.
"""

from .canvas_view import CanvasView
from .toolbar import CanvasToolbar
from .tools import Tool

__all__ = ["CanvasView", "CanvasToolbar", "Tool"]
