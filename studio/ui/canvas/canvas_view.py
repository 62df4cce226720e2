"""CanvasView: shows the document, paints the inpainting mask, zooms and pans."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPointingDevice,
    QResizeEvent,
    QTabletEvent,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import QApplication, QSizePolicy, QStyle, QStyleOption, QWidget

from ...io.image_formats import is_image_path
from ...state.qimages import rgb_view, to_rgb_uint8
from .commands import ControlCommand, DocumentCommand, MaskCommand, StrokeCommand
from .control_layer import resize_nearest
from .document import CONTROL, MASK, CanvasDocument
from .mask_layer import Box, union
from .overlay import paint_control_overlay, paint_mask_overlay
from .tools import DEFAULT_HARDNESS, Tool, clamp_brush_size, default_brush_size, step_brush_size
from .view import WHEEL_STEP, ViewTransform

UNDO_LIMIT = 100  # bounds memory: a full-mask step on a 2048 px document is 16 MB
DEFAULT_OVERLAY = QColor(255, 60, 60)
DEFAULT_OVERLAY_OPACITY = 0.45

# Keys the canvas handles itself when it has focus, even if the window binds them to
# actions: with focus on the canvas, Ctrl+Z must undo the canvas's stack.
_MOD_MASK = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier


def _has_mods(e: QKeyEvent, mods: Qt.KeyboardModifier) -> bool:
    return (e.modifiers() & _MOD_MASK) == mods


class CanvasView(QWidget):
    """The document image with its inpainting mask, zoomable and pannable.

    Drawing is custom (no QGraphicsScene): the only items are an image, the mask
    overlay and a brush outline, and painting them directly keeps a full repaint of a
    1024 px document within a frame and a brush-move repaint to the touched area.

    Mouse: left drag paints with the current tool (Shift+click draws a straight line
    from the last stroke); middle drag or Space+drag pans; the wheel zooms around the
    cursor. A pen on a tablet paints the same way, its pressure scaling the brush
    size (unless pressure is switched off), and its eraser end erases.
    Keys (when the canvas has focus): [ ] brush size, B brush, E eraser, X swap tool,
    Delete clear mask, Ctrl+Shift+I invert mask, Ctrl+0 fit, Ctrl+1 100 %, Ctrl+= / Ctrl+- zoom,
    Ctrl+Z undo, Ctrl+Shift+Z or Ctrl+Y redo.

    The control layer (ControlNet's control image) is edited the same way while control mode
    is on: it is shown over the image, the brush draws white on it, the eraser black (empty),
    and Delete clears it. Off, it is hidden and the brush paints the mask again.
    """

    mask_changed = Signal()  # once per completed edit (stroke release, clear, undo...), never per mouse move
    control_changed = Signal()  # the same for the control layer
    control_mode_changed = Signal(bool)  # strokes go to (and the canvas shows) the control layer
    image_changed = Signal()
    image_dropped = Signal(str)
    control_image_dropped = Signal(str)  # dropped in control mode, or with Alt held: for the control layer
    status_message = Signal(str)
    zoom_changed = Signal(float)
    # Beyond the window's contract: lets CanvasToolbar follow keyboard changes.
    tool_changed = Signal(str)
    brush_size_changed = Signal(int)
    hardness_changed = Signal(float)
    pressure_changed = Signal(bool)
    pen_seen = Signal()  # the first tablet event: the toolbar shows its pressure toggle from then on
    overlay_changed = Signal()
    # (x, y, mask value) of the document pixel under the mouse. Not a status_message: at one
    # per mouse move it would bury the window's own messages (saved, finished...).
    pixel_hovered = Signal(int, int, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc = CanvasDocument(512, 512, self)
        self._doc.image_replaced.connect(self._on_image_replaced)
        self._doc.mask_edited.connect(self._on_mask_edited)
        self._doc.control_edited.connect(self._on_control_edited)
        self._undo = QUndoStack(self)
        self._undo.setUndoLimit(UNDO_LIMIT)
        self._view = ViewTransform()
        self._doc_size = (512, 512)

        self._tool = Tool.BRUSH
        self._brush_size = default_brush_size(*self._doc_size)
        self._brush_size_chosen = False  # until the user picks a size, the brush follows the image's size
        self._hardness = DEFAULT_HARDNESS
        self._overlay_opacity = DEFAULT_OVERLAY_OPACITY
        self._doc.mask_layer.set_color(DEFAULT_OVERLAY)

        self._frame: QImage | None = None
        self._frame_pixels: np.ndarray | None = None  # keeps the QImage's borrowed pixels alive

        self._stroking = False
        self._stroke_before: np.ndarray | None = None
        self._stroke_box: Box | None = None
        self._last_point: QPointF | None = None  # image coordinates of the stroke's last point
        self._last_stroke_end: QPointF | None = None  # for Shift+click straight lines
        self._last_diameter: float | None = None  # the stroke's size at its last point (pen pressure)
        self._stroke_erases = False
        self._stroke_layer = MASK
        self._control_mode = False
        # A preprocessed control map shown in place of the layer (display only) until the layer changes.
        self._control_preview: QImage | None = None
        self._control_preview_pixels: np.ndarray | None = None
        self._pressure_sizes = True
        self._pen_seen = False

        # A press that gave the canvas focus paints only once the mouse drags: a click to focus the
        # canvas (to use its keys) leaves no dab. (widget position, Shift held)
        self._focus_press: tuple[QPointF, bool] | None = None
        self._focus_by_mouse = False

        self._panning = False
        self._pan_last = QPointF()
        self._space_held = False
        self._cursor_pos: QPointF | None = None  # widget coordinates, None when outside

        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # paintEvent fills every pixel
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(96, 96)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setAccessibleName("Canvas")
        self.setAccessibleDescription("The image and its inpainting mask; paint with the left button")

    # ===================================================================== document API
    def set_image(self, img: np.ndarray, *, undoable: bool = True) -> None:
        """Make ``img`` (uint8 HxWx3; greyscale/RGBA/float accepted) the document.

        The mask is kept when the size is unchanged and reset otherwise. A transient
        frame (show_frame) is dropped so the new document is what shows.
        """
        self._finish_stroke()
        image = to_rgb_uint8(img).copy()  # a private copy: commands share it read-only
        h, w = image.shape[:2]
        same_size = (h, w) == (self._doc.height, self._doc.width)
        mask = self._doc.mask_snapshot() if same_size else None
        # The control layer stays with the document: a scribble still fits a result of another size.
        control = self._doc.control_at_size(w, h)
        if undoable:
            self._undo.push(DocumentCommand(self._doc, self._doc.state(), (image, mask, control), "Set image"))
        else:
            if not same_size:
                # Old strokes and image steps refer to the old geometry; they can no longer apply.
                self._undo.clear()
            self._doc.set_state(image, mask, control)

    def image(self) -> np.ndarray:
        """A copy of the document image, uint8 HxWx3."""
        return self._doc.image.copy()

    def image_size(self) -> QSize:
        return QSize(self._doc.width, self._doc.height)

    def mask(self) -> np.ndarray | None:
        """A copy of the mask, float32 HxW in [0, 1] (1 = repaint), or None when nothing is masked."""
        return self._doc.mask_snapshot()

    def has_mask(self) -> bool:
        return not self._doc.mask_layer.is_empty()

    def set_mask(self, m: np.ndarray, *, undoable: bool = True) -> None:
        """Replace the mask. ``m`` is HxW (or HxWx1) at the document size: float in [0, 1],
        bool, or uint8 0-255."""
        self._finish_stroke()
        arr = np.asarray(m)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.shape != (self._doc.height, self._doc.width):
            raise ValueError(f"mask shape {arr.shape} does not match the image ({self._doc.height}, {self._doc.width})")
        if arr.dtype == np.uint8:
            new = arr.astype(np.float32) / 255.0
        else:
            new = np.clip(arr.astype(np.float32), 0.0, 1.0)
        after = new if new.any() else None
        if undoable:
            self._undo.push(MaskCommand(self._doc, self._doc.mask_snapshot(), after, "Set mask"))
        else:
            self._doc.replace_mask(after)

    def clear_mask(self) -> None:
        """Empty the mask (one undo step; nothing happens if it is already empty)."""
        self._finish_stroke()
        if self.has_mask():
            self._undo.push(MaskCommand(self._doc, self._doc.mask_snapshot(), None, "Clear mask"))

    def invert_mask(self) -> None:
        self._finish_stroke()
        before = self._doc.mask_snapshot()
        after = np.ones((self._doc.height, self._doc.width), np.float32)
        if before is not None:
            after -= before
        self._undo.push(MaskCommand(self._doc, before, after if after.any() else None, "Invert mask"))

    def extend(self, left: int, top: int, right: int, bottom: int, *, fill: str = "edge") -> None:
        """Grow the canvas by these pixel counts for outpainting (one undo step).

        The new area is masked (1) and filled with the replicated edge pixels
        (``fill="edge"``), which gives the sampler plausible colours to start from,
        or with mid grey (``fill="grey"``).
        """
        pads = [int(v) for v in (left, top, right, bottom)]
        if min(pads) < 0:
            raise ValueError("extend() only grows the canvas; margins must be >= 0")
        if fill not in ("edge", "grey"):
            raise ValueError(f"fill must be 'edge' or 'grey', not {fill!r}")
        if not any(pads):
            return
        self._finish_stroke()
        left, top, right, bottom = pads
        h, w = self._doc.height, self._doc.width
        spec = ((top, bottom), (left, right), (0, 0))
        if fill == "edge":
            image = np.pad(self._doc.image, spec, mode="edge")
        else:
            image = np.pad(self._doc.image, spec, mode="constant", constant_values=128)
        mask = np.ones((h + top + bottom, w + left + right), np.float32)
        mask[top : top + h, left : left + w] = self._doc.mask_layer.array
        control = self._doc.control_snapshot()
        if control is not None:
            control = np.pad(control, spec)  # the new margins hold no control lines
        self._undo.push(DocumentCommand(self._doc, self._doc.state(), (image, mask, control), "Extend canvas"))
        self.status_message.emit(f"Canvas extended to {w + left + right} × {h + top + bottom} px")

    def undo_stack(self) -> QUndoStack:
        return self._undo

    # ===================================================================== control layer
    def control_image(self) -> np.ndarray | None:
        """A copy of the control layer, uint8 HxWx3 at the document size (white lines on black), or None
        when nothing is on it."""
        return self._doc.control_snapshot()

    def has_control(self) -> bool:
        return not self._doc.control_layer.is_empty()

    def set_control_image(self, img: np.ndarray, *, undoable: bool = True, show: bool = True) -> None:
        """Load ``img`` (any size; greyscale/RGBA/float accepted) into the control layer, stretched to the
        document (nearest pixel). With ``show`` the control layer is shown, so the user sees what was loaded."""
        self._finish_stroke()
        rgb = resize_nearest(to_rgb_uint8(img), self._doc.width, self._doc.height)
        after = rgb if rgb.any() else None
        if undoable:
            self._undo.push(ControlCommand(self._doc, self._doc.control_snapshot(), after, "Load control image"))
        else:
            self._doc.replace_control(after)
        if show:
            self.set_control_mode(True)

    def clear_control(self) -> None:
        """Empty the control layer (one undo step; nothing happens if it is already empty)."""
        self._finish_stroke()
        if self.has_control():
            self._undo.push(ControlCommand(self._doc, self._doc.control_snapshot(), None, "Clear control layer"))

    def clear_active_layer(self) -> None:
        """What Delete and the toolbar's Clear do: the control layer in control mode, else the mask."""
        self.clear_control() if self._control_mode else self.clear_mask()

    def control_mode(self) -> bool:
        return self._control_mode

    def set_control_mode(self, on: bool) -> None:
        """Show the control layer and send strokes to it (on), or hide it and paint the mask (off)."""
        if on == self._control_mode:
            return
        self._finish_stroke()
        self._control_mode = on
        self._drop_control_preview()
        self.update()
        self.control_mode_changed.emit(on)
        self.status_message.emit("Control layer: the brush draws white lines, the eraser black" if on else
                                 "Mask: the brush paints the area to repaint")

    def show_control_preview(self, control_map: np.ndarray | None) -> None:
        """Show ``control_map`` (what a preprocessor makes of the layer, any size) in place of the control
        layer until the layer changes or control mode is left; None returns to the layer itself."""
        if control_map is None:
            self._drop_control_preview()
        else:
            self.set_control_mode(True)
            self._control_preview_pixels = to_rgb_uint8(control_map)
            self._control_preview = rgb_view(self._control_preview_pixels)
        self.update()

    def is_previewing_control(self) -> bool:
        return self._control_preview is not None

    def control_preview(self) -> np.ndarray | None:
        """A copy of the map on show in place of the control layer (uint8 RGB, its own size), or None."""
        return None if self._control_preview_pixels is None else self._control_preview_pixels.copy()

    def _drop_control_preview(self) -> None:
        if self._control_preview is not None:
            self._control_preview = None
            self._control_preview_pixels = None
            self.update()

    # ===================================================================== transient frames
    def show_frame(self, img: np.ndarray) -> None:
        """Show ``img`` (any size) stretched over the document, e.g. a denoising preview.

        Neither the document nor the undo stack changes; show_document() (or any
        set_image) returns to the document. The mask overlay is hidden over frames so
        the preview can be judged, except while a stroke is being painted.
        """
        pixels = to_rgb_uint8(img)
        self._frame_pixels = pixels
        self._frame = rgb_view(pixels)
        self.update()

    def show_document(self) -> None:
        if self._frame is not None:
            self._frame = None
            self._frame_pixels = None
            self.update()

    def is_showing_frame(self) -> bool:
        return self._frame is not None

    # ===================================================================== tools
    def tool(self) -> str:
        return self._tool.value

    def set_tool(self, tool: str | Tool) -> None:
        new = Tool(tool)
        if new != self._tool:
            self._tool = new
            self.tool_changed.emit(new.value)
            if self._control_mode:
                self.status_message.emit("Brush: draw white lines on the control layer" if new is Tool.BRUSH
                                         else "Eraser: back to black (empty) on the control layer")
            else:
                self.status_message.emit("Brush: paint the area to repaint" if new is Tool.BRUSH else "Eraser")

    @property
    def brush_size(self) -> int:
        return self._brush_size

    @brush_size.setter
    def brush_size(self, px: int) -> None:
        self.set_brush_size(px)

    def set_brush_size(self, px: int) -> None:
        """The user's brush size: kept from now on, whatever the size of later images."""
        self._brush_size_chosen = True
        self._apply_brush_size(px)

    def _apply_brush_size(self, px: float) -> None:
        size = clamp_brush_size(px)
        if size != self._brush_size:
            old = self._cursor_rect()
            self._brush_size = size
            self.update(old.united(self._cursor_rect()))
            self.brush_size_changed.emit(size)

    @property
    def pressure_sizes(self) -> bool:
        """Whether pen pressure scales the brush (a mouse always paints at full size)."""
        return self._pressure_sizes

    def set_pressure_sizes(self, on: bool) -> None:
        if on != self._pressure_sizes:
            self._pressure_sizes = on
            self.pressure_changed.emit(on)

    @property
    def hardness(self) -> float:
        return self._hardness

    def set_hardness(self, h: float) -> None:
        """Edge hardness of the brush in [0, 1]: 1 is a crisp disc, lower values feather the edge."""
        h = float(min(max(h, 0.0), 1.0))
        if h != self._hardness:
            self._hardness = h
            self.hardness_changed.emit(h)

    def overlay_color(self) -> QColor:
        return self._doc.mask_layer.color

    def overlay_opacity(self) -> float:
        return self._overlay_opacity

    def set_overlay(self, color: QColor | None = None, opacity: float | None = None) -> None:
        """Colour and opacity of the mask overlay (``color``'s own alpha is ignored: ``opacity`` rules)."""
        if color is not None:
            self._doc.mask_layer.set_color(QColor(color))
        if opacity is not None:
            self._overlay_opacity = float(min(max(opacity, 0.0), 1.0))
        self.overlay_changed.emit()
        self.update()

    # ===================================================================== zoom
    def zoom(self) -> float:
        return self._view.zoom

    def zoom_fit(self) -> None:
        self._view.fit(self._image_sizef(), QSizeF(self.size()))
        self._after_view_change()

    def zoom_100(self) -> None:
        self.set_zoom(1.0)

    def set_zoom(self, zoom: float) -> None:
        """Zoom to ``zoom`` with the document centred."""
        self._view.set_zoom_centered(zoom, self._image_sizef(), QSizeF(self.size()))
        self._after_view_change()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` around ``anchor`` (widget coordinates; default the widget centre)."""
        if anchor is None:
            anchor = QPointF(self.width() / 2.0, self.height() / 2.0)
        self._view.zoom_at(factor, anchor)
        self._after_view_change()

    def map_to_image(self, p: QPointF) -> QPointF:
        """Widget coordinates to continuous document pixel coordinates."""
        return self._view.to_image(QPointF(p))

    def map_from_image(self, p: QPointF) -> QPointF:
        return self._view.to_widget(QPointF(p))

    def _image_sizef(self) -> QSizeF:
        return QSizeF(self._doc.width, self._doc.height)

    def _after_view_change(self) -> None:
        self._view.keep_visible(self._image_sizef(), QSizeF(self.size()))
        self.update()
        self.zoom_changed.emit(self._view.zoom)

    # ===================================================================== document signals
    def _on_image_replaced(self) -> None:
        self._abort_stroke()
        self._frame = None
        self._frame_pixels = None
        size = (self._doc.width, self._doc.height)
        if size != self._doc_size:
            self._doc_size = size
            self._last_stroke_end = None
            if not self._brush_size_chosen:
                self._apply_brush_size(default_brush_size(*size))
            if self._view.fitting:
                self.zoom_fit()
            else:
                self.set_zoom(self._view.zoom)
        self._drop_control_preview()
        self.update()
        self.image_changed.emit()
        self.mask_changed.emit()
        self.control_changed.emit()

    def _on_mask_edited(self, box: Box | None) -> None:
        if self._stroking and self._stroke_layer == MASK:
            # An undo/redo landed mid-stroke (e.g. from a window action): the stroke's "before"
            # is stale, so the stroke's undo step restarts from the mask as it is now.
            self._stroke_before = self._doc.mask_layer.array.copy()
            self._stroke_box = None
        self.update() if box is None else self.update(self._widget_rect(box))
        self.mask_changed.emit()

    def _on_control_edited(self, box: Box | None) -> None:
        if self._stroking and self._stroke_layer == CONTROL:
            self._stroke_before = self._doc.control_layer.array.copy()  # as _on_mask_edited
            self._stroke_box = None
        self._drop_control_preview()
        self.update() if box is None else self.update(self._widget_rect(box))
        self.control_changed.emit()

    def _painted_layer(self):  # MaskLayer | ControlLayer: the same stroke interface
        return self._doc.control_layer if self._stroke_layer == CONTROL else self._doc.mask_layer

    # ===================================================================== strokes
    def _begin_stroke(
        self, p: QPointF, straight_line: bool, pressure: float | None = None, erase: bool | None = None
    ) -> None:
        self._finish_stroke()  # a release lost to another window must not drop the last stroke from history
        self._stroking = True
        self._stroke_erases = self._tool is Tool.ERASER if erase is None else erase
        self._stroke_layer = CONTROL if self._control_mode else MASK
        self._drop_control_preview()  # the layer itself shows while it is drawn on
        self._stroke_before = self._painted_layer().array.copy()
        self._stroke_box = None
        start = self._last_stroke_end if straight_line and self._last_stroke_end is not None else p
        self._last_point = start
        self._last_diameter = None
        self._paint_to(p, pressure)

    def _diameter(self, pressure: float | None) -> float:
        if pressure is None or not self._pressure_sizes:
            return float(self._brush_size)
        # A light touch still leaves a mark: at least 5 % of the size (and 1 px, see segment_coverage).
        return self._brush_size * min(max(pressure, 0.05), 1.0)

    def _paint_to(self, p: QPointF, pressure: float | None = None) -> None:
        a = self._last_point if self._last_point is not None else p
        diameter = self._diameter(pressure)
        start = self._last_diameter if self._last_diameter is not None else diameter
        box = self._painted_layer().paint_segment(
            a.x(), a.y(), p.x(), p.y(), start, self._hardness, self._stroke_erases, end_diameter=diameter
        )
        self._last_point = QPointF(p)
        self._last_diameter = diameter
        if box is not None:
            self._stroke_box = union(self._stroke_box, box)
            self.update(self._widget_rect(box))

    def _finish_stroke(self) -> None:
        """Commit the stroke in progress as one undo step (also called before other edits)."""
        if not self._stroking:
            return
        self._stroking = False
        self._last_stroke_end = self._last_point
        before, box = self._stroke_before, self._stroke_box
        self._stroke_before = None
        self._stroke_box = None
        if before is None or box is None:
            return
        left, top, right, bottom = box
        old = before[top:bottom, left:right].copy()
        new = self._painted_layer().read(box)
        if np.array_equal(old, new):
            return  # e.g. erasing an empty area: not worth an undo step
        what = "control layer" if self._stroke_layer == CONTROL else "mask"
        text = f"{'Erase' if self._stroke_erases else 'Paint'} {what}"
        self._undo.push(StrokeCommand(self._doc, box, old, new, text, self._stroke_layer))
        self.control_changed.emit() if self._stroke_layer == CONTROL else self.mask_changed.emit()

    def _abort_stroke(self) -> None:
        """Drop a stroke whose document was replaced under it (it cannot be committed)."""
        self._stroking = False
        self._stroke_before = None
        self._stroke_box = None

    # ===================================================================== painting
    def _smooth_scaling(self) -> bool:
        # Magnified pixels are shown as crisp squares (what a 64 px sample really looks like);
        # minified or slightly magnified large images are filtered so they do not shimmer.
        z = self._view.zoom
        if z >= 2.0:
            return False
        return not (z > 1.0 and max(self._doc.width, self._doc.height) <= 256)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        clip = event.rect()
        # The surround follows the palette, then any style sheet background set on CanvasView.
        p.fillRect(clip, self.palette().color(QPalette.ColorRole.Window).darker(125))
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, opt, p, self)

        target = self._view.image_rect(self._image_sizef())
        if target.intersects(QRectF(clip)):
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._smooth_scaling())
            showing_frame = self._frame is not None
            p.drawImage(target, self._frame if showing_frame else self._doc.display_image(self._view.zoom))
            if self._overlay_opacity > 0 and (not showing_frame or self._stroking):
                paint_mask_overlay(p, self._doc.mask_layer.overlay_image(), target, clip, self._overlay_opacity,
                                   self._smooth_scaling())
            if self._control_mode and (not showing_frame or self._stroking):
                control = self._control_preview or self._doc.control_layer.image()
                paint_control_overlay(p, control, target, self._smooth_scaling())
        # A hairline frame tells the document apart from a surround of similar colour.
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(QPen(self.palette().color(QPalette.ColorRole.Shadow), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(target.adjusted(-1, -1, 0, 0))
        self._paint_brush_outline(p)
        p.end()

    def _paint_brush_outline(self, p: QPainter) -> None:
        if self._cursor_pos is None or self._panning or self._space_held:
            return
        r = self._brush_size * self._view.zoom / 2.0
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        # A dark and a light ring: visible over any image, whatever the theme.
        p.setPen(QPen(QColor(0, 0, 0, 170), 1.0))
        p.drawEllipse(self._cursor_pos, r + 0.75, r + 0.75)
        pen = QPen(QColor(255, 255, 255, 220), 1.0)
        if self._tool is Tool.ERASER:
            pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawEllipse(self._cursor_pos, r - 0.25, r - 0.25)

    def _cursor_rect(self) -> QRect:
        if self._cursor_pos is None:
            return QRect()
        r = self._brush_size * self._view.zoom / 2.0 + 3.0
        c = self._cursor_pos
        return QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r).toAlignedRect()

    def _widget_rect(self, box: Box) -> QRect:
        left, top, right, bottom = box
        return self._view.map_rect(QRectF(left, top, right - left, bottom - top)).toAlignedRect().adjusted(-2, -2, 2, 2)

    def _move_cursor(self, pos: QPointF | None) -> None:
        old = self._cursor_rect()
        self._cursor_pos = pos
        self.update(old.united(self._cursor_rect()))

    # ===================================================================== input
    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_held):
            self._finish_stroke()
            self._panning = True
            self._pan_last = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            self._move_cursor(pos)
        elif button == Qt.MouseButton.LeftButton and not self._panning:
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if self._focus_by_mouse:  # this press moved the focus here: paint only if it becomes a drag
                self._focus_press = (QPointF(pos), shift)
            else:
                self._begin_stroke(self._view.to_image(pos), straight_line=shift)
        self._focus_by_mouse = False
        event.accept()

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        # Qt gives the focus before it delivers the press that caused it.
        self._focus_by_mouse = event.reason() == Qt.FocusReason.MouseFocusReason
        super().focusInEvent(event)

    def _start_focus_press_stroke(self, pos: QPointF) -> None:
        """A press that focused the canvas became a drag: the stroke starts where the press was."""
        start, shift = self._focus_press
        if (pos - start).manhattanLength() < QApplication.startDragDistance():
            return
        self._focus_press = None
        self._begin_stroke(self._view.to_image(start), straight_line=shift)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._panning:
            self._view.pan(pos.x() - self._pan_last.x(), pos.y() - self._pan_last.y())
            self._pan_last = pos
            self._view.keep_visible(self._image_sizef(), QSizeF(self.size()))
            self.update()
        else:
            if self._focus_press is not None:
                if event.buttons() & Qt.MouseButton.LeftButton:
                    self._start_focus_press_stroke(pos)
                else:
                    self._focus_press = None
            if self._stroking:
                if event.buttons() & Qt.MouseButton.LeftButton:
                    self._paint_to(self._view.to_image(pos))
                else:
                    self._finish_stroke()  # the release went elsewhere (e.g. a popup grabbed the mouse)
        self._move_cursor(pos)
        self._report_position(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.LeftButton:
            self._focus_press = None  # a click that only focused the canvas: no dab
        if self._panning and button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._panning = False
            self._restore_cursor()
            self.update()
        elif self._stroking and button == Qt.MouseButton.LeftButton:
            self._paint_to(self._view.to_image(event.position()))
            self._finish_stroke()
        event.accept()

    def tabletEvent(self, event: QTabletEvent) -> None:
        """Pen strokes with pressure. Anything else (hovering, the pen's side buttons, Space+drag
        panning) is ignored here, and Qt turns it into the mouse events handled above."""
        kind = event.type()
        pos = event.position()
        if not self._pen_seen:
            self._pen_seen = True
            self.pen_seen.emit()
        if kind == QEvent.Type.TabletPress:
            self._focus_by_mouse = False  # a pen paints at once (it has no hover-and-click habit to protect)
            if event.button() != Qt.MouseButton.LeftButton or self._space_held or self._panning:
                event.ignore()
                return
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            erase = True if event.pointerType() == QPointingDevice.PointerType.Eraser else None
            self._begin_stroke(self._view.to_image(pos), straight_line=shift, pressure=event.pressure(), erase=erase)
        elif kind == QEvent.Type.TabletMove and self._stroking:
            self._paint_to(self._view.to_image(pos), event.pressure())
        elif kind == QEvent.Type.TabletRelease and self._stroking:
            self._finish_stroke()  # the release reports zero pressure: no final segment
        else:
            event.ignore()
            return
        self._move_cursor(pos)
        self._report_position(pos)
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self._move_cursor(None)
        super().leaveEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A Space released while another widget had focus would otherwise leave the pan mode stuck.
        self._space_held = False
        self._restore_cursor()
        super().focusOutEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self.zoom_by(WHEEL_STEP**delta, event.position())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._view.fitting:
            self.zoom_fit()
        else:
            self._view.keep_visible(self._image_sizef(), QSizeF(self.size()))

    def _report_position(self, pos: QPointF) -> None:
        q = self._view.to_image(pos)
        x, y = int(np.floor(q.x())), int(np.floor(q.y()))
        if 0 <= x < self._doc.width and 0 <= y < self._doc.height:
            self.pixel_hovered.emit(x, y, float(self._doc.mask_layer.array[y, x]))

    def _restore_cursor(self) -> None:
        if self._space_held:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)

    # -- keyboard -----------------------------------------------------------------------------
    def _key_action(self, e: QKeyEvent) -> Callable[[], None] | None:
        key = e.key()
        ctrl = Qt.KeyboardModifier.ControlModifier
        shift = Qt.KeyboardModifier.ShiftModifier
        none = Qt.KeyboardModifier.NoModifier
        if e.matches(QKeySequence.StandardKey.Undo):
            return self._undo_action
        if e.matches(QKeySequence.StandardKey.Redo) or (key == Qt.Key.Key_Z and _has_mods(e, ctrl | shift)):
            return self._redo_action
        if key == Qt.Key.Key_Y and _has_mods(e, ctrl):
            return self._redo_action
        if key == Qt.Key.Key_BracketLeft:
            return lambda: self.set_brush_size(step_brush_size(self._brush_size, grow=False))
        if key == Qt.Key.Key_BracketRight:
            return lambda: self.set_brush_size(step_brush_size(self._brush_size, grow=True))
        if _has_mods(e, none):
            table = {
                Qt.Key.Key_B: lambda: self.set_tool(Tool.BRUSH),
                Qt.Key.Key_E: lambda: self.set_tool(Tool.ERASER),
                Qt.Key.Key_X: lambda: self.set_tool(Tool.ERASER if self._tool is Tool.BRUSH else Tool.BRUSH),
                Qt.Key.Key_Delete: self.clear_active_layer,
                Qt.Key.Key_Backspace: self.clear_active_layer,
            }
            return table.get(key)
        if _has_mods(e, ctrl):
            table = {
                Qt.Key.Key_0: self.zoom_fit,
                Qt.Key.Key_1: self.zoom_100,
                Qt.Key.Key_Equal: lambda: self.zoom_by(1.25),
                Qt.Key.Key_Plus: lambda: self.zoom_by(1.25),
                Qt.Key.Key_Minus: lambda: self.zoom_by(0.8),
            }
            return table.get(key)
        if _has_mods(e, ctrl | shift) and key == Qt.Key.Key_I:
            return self.invert_mask
        return None

    def _undo_action(self) -> None:
        self._finish_stroke()
        if self._undo.canUndo():
            self.status_message.emit(f"Undo: {self._undo.undoText()}")
            self._undo.undo()

    def _redo_action(self) -> None:
        if self._undo.canRedo():
            self.status_message.emit(f"Redo: {self._undo.redoText()}")
            self._undo.redo()

    def event(self, event: QEvent) -> bool:
        # Claim our keys before window-level shortcuts (e.g. an Edit menu's Ctrl+Z bound to
        # another stack) see them, but only while the canvas has focus.
        if event.type() == QEvent.Type.ShortcutOverride and self._key_action(event) is not None:
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            if not self._panning:
                self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.update(self._cursor_rect())
            return
        action = self._key_action(event)
        if action is not None:
            action()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            if not self._panning:
                self._restore_cursor()
            self.update(self._cursor_rect())
            return
        super().keyReleaseEvent(event)

    # -- drops ------------------------------------------------------------------------------
    @staticmethod
    def _dropped_image_path(event: QDragEnterEvent | QDropEvent) -> str | None:
        mime = event.mimeData()
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and is_image_path(url.toLocalFile()):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_image_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_image_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if self._control_mode or event.modifiers() & Qt.KeyboardModifier.AltModifier:
            self.control_image_dropped.emit(path)
        else:
            self.image_dropped.emit(path)

    def sizeHint(self) -> QSize:
        return QSize(640, 640)
