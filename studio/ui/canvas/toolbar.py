"""CanvasToolbar: the compact strip of mask and control-layer tools docked above the canvas."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QInputDevice, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

from .canvas_view import CanvasView
from .tools import MAX_BRUSH_PX, MIN_BRUSH_PX, Tool

_SIZE_STEPS = 1000


def _size_to_slider(px: int) -> int:
    # Logarithmic: equal slider travel for 2->4 px and 200->400 px, as brushes are felt.
    span = math.log(MAX_BRUSH_PX / MIN_BRUSH_PX)
    return round(math.log(max(px, MIN_BRUSH_PX) / MIN_BRUSH_PX) / span * _SIZE_STEPS)


def _slider_to_size(pos: int) -> int:
    span = math.log(MAX_BRUSH_PX / MIN_BRUSH_PX)
    return round(MIN_BRUSH_PX * math.exp(pos / _SIZE_STEPS * span))


def has_pen() -> bool:
    """Whether the window system reports a stylus (a graphics tablet or a pen display)."""
    return any(d.type() == QInputDevice.DeviceType.Stylus for d in QInputDevice.devices())


class CanvasToolbar(QWidget):
    """Brush/eraser, size, hardness, overlay opacity, clear/invert, the control layer and zoom controls.

    Every control mirrors the canvas through its signals, so keyboard changes made on
    the canvas ([ ], B, E...) show here too. Controls never take keyboard focus: the
    canvas keeps it and its shortcuts keep working after a click on the toolbar.
    Colours come from the palette/style sheet only, so it follows the window's theme.
    """

    def __init__(self, canvas: CanvasView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._canvas = canvas
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 3, 6, 3)
        row.setSpacing(4)

        self.brush_button = self._button("Brush", "Brush: paint the area to repaint (B)", checkable=True)
        self.eraser_button = self._button("Eraser", "Eraser: remove from the mask (E; X swaps tools)", checkable=True)
        self._tools = QButtonGroup(self)
        self._tools.setExclusive(True)
        self._tools.addButton(self.brush_button)
        self._tools.addButton(self.eraser_button)
        self.brush_button.clicked.connect(lambda: canvas.set_tool(Tool.BRUSH))
        self.eraser_button.clicked.connect(lambda: canvas.set_tool(Tool.ERASER))
        row.addWidget(self.brush_button)
        row.addWidget(self.eraser_button)
        row.addWidget(self._separator())

        self.size_slider, self.size_label = self._slider(
            row, "Size", 0, _SIZE_STEPS, "Brush size ([ smaller, ] larger)", width_hint="1024 px"
        )
        self.size_slider.valueChanged.connect(lambda v: canvas.set_brush_size(_slider_to_size(v)))
        self.hardness_slider, self.hardness_label = self._slider(
            row, "Hardness", 0, 100, "Brush edge: 100 % is crisp, lower values feather the edge", width_hint="100 %"
        )
        self.hardness_slider.valueChanged.connect(lambda v: canvas.set_hardness(v / 100.0))
        self.pressure_button = self._button(
            "Pressure", "Pen pressure sets the brush size (tablets; a mouse always paints full size)", checkable=True
        )
        self.pressure_button.toggled.connect(canvas.set_pressure_sizes)
        row.addWidget(self.pressure_button)
        # Only pen users need it: shown when a tablet is plugged in or first used (the strip is full).
        self.pressure_button.setVisible(has_pen())
        canvas.pen_seen.connect(lambda: self.pressure_button.setVisible(True))
        row.addWidget(self._separator())

        self.opacity_slider, self.opacity_label = self._slider(
            row, "Overlay", 0, 100, "Opacity of the mask overlay (display only)", width_hint="100 %"
        )
        self.opacity_slider.valueChanged.connect(lambda v: canvas.set_overlay(opacity=v / 100.0))
        self.color_button = self._button("", "Colour of the mask overlay")
        self.color_button.clicked.connect(self._pick_color)
        row.addWidget(self.color_button)
        row.addSpacing(6)
        self.clear_button = self._button("Clear", "Clear the mask (Delete)")
        self.clear_button.clicked.connect(canvas.clear_active_layer)
        self.invert_button = self._button("Invert", "Invert the mask (Ctrl+Shift+I)")
        self.invert_button.clicked.connect(canvas.invert_mask)
        row.addWidget(self.clear_button)
        row.addWidget(self.invert_button)
        row.addWidget(self._separator())

        self.control_button = self._button(
            "Control", "Control layer (Ctrl+L): show the ControlNet control image and draw on it; off paints the "
                       "mask again", checkable=True)
        self.control_button.setObjectName("controlLayerButton")
        self.control_button.toggled.connect(canvas.set_control_mode)
        self.preview_button = self._button(
            "Preview", "Show what the first ControlNet unit's preprocessor makes of the control layer", checkable=True)
        self.preview_button.setObjectName("controlPreviewButton")
        row.addWidget(self.control_button)
        row.addWidget(self.preview_button)

        row.addStretch(1)
        self.fit_button = self._button("Fit", "Zoom to fit the window (Ctrl+0)")
        self.fit_button.clicked.connect(canvas.zoom_fit)
        self.actual_button = self._button("100%", "Actual pixels (Ctrl+1); the wheel zooms around the cursor")
        self.actual_button.clicked.connect(canvas.zoom_100)
        self.zoom_label = QLabel()
        self.zoom_label.setToolTip("Zoom (Ctrl+= / Ctrl+-; pan with Space+drag or the middle button)")
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("6400 %") + 4)
        row.addWidget(self.fit_button)
        row.addWidget(self.actual_button)
        row.addWidget(self.zoom_label)

        canvas.tool_changed.connect(self._sync_tool)
        canvas.brush_size_changed.connect(self._sync_size)
        canvas.hardness_changed.connect(self._sync_hardness)
        canvas.pressure_changed.connect(self.pressure_button.setChecked)
        canvas.overlay_changed.connect(self._sync_overlay)
        canvas.zoom_changed.connect(self._sync_zoom)
        canvas.mask_changed.connect(self._sync_mask_buttons)
        canvas.control_changed.connect(self._sync_mask_buttons)
        canvas.control_mode_changed.connect(self._sync_control_mode)
        self._sync_tool(canvas.tool())
        self._sync_size(canvas.brush_size)
        self._sync_hardness(canvas.hardness)
        self.pressure_button.setChecked(canvas.pressure_sizes)
        self._sync_overlay()
        self._sync_zoom(canvas.zoom())
        self._sync_control_mode(canvas.control_mode())

    # -- construction -----------------------------------------------------------------------
    def _button(self, text: str, tip: str, checkable: bool = False) -> QToolButton:
        b = QToolButton(self)
        b.setText(text)
        b.setAccessibleName(text or tip)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly if text else Qt.ToolButtonStyle.ToolButtonIconOnly)
        return b

    def _slider(
        self, row: QHBoxLayout, title: str, lo: int, hi: int, tip: str, width_hint: str
    ) -> tuple[QSlider, QLabel]:
        caption = QLabel(title)
        caption.setToolTip(tip)
        slider = QSlider(Qt.Orientation.Horizontal, self)
        slider.setRange(lo, hi)
        slider.setToolTip(tip)
        slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        slider.setMinimumWidth(60)
        slider.setMaximumWidth(120)
        value = QLabel()
        value.setToolTip(tip)
        # Fixed width so the row does not jitter as the number changes length.
        value.setMinimumWidth(value.fontMetrics().horizontalAdvance(width_hint) + 2)
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(caption)
        row.addWidget(slider)
        row.addWidget(value)
        row.addSpacing(6)
        return slider, value

    def _separator(self) -> QFrame:
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.VLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        return line

    # -- following the canvas -----------------------------------------------------------------
    def _sync_tool(self, tool: str) -> None:
        (self.brush_button if tool == Tool.BRUSH.value else self.eraser_button).setChecked(True)

    def _sync_size(self, px: int) -> None:
        self.size_label.setText(f"{px} px")
        # Only move the slider if it does not already map to this size (it is coarser than 1 px).
        if _slider_to_size(self.size_slider.value()) != px:
            self.size_slider.blockSignals(True)
            self.size_slider.setValue(_size_to_slider(px))
            self.size_slider.blockSignals(False)

    def _sync_hardness(self, h: float) -> None:
        self.hardness_label.setText(f"{round(h * 100)} %")
        self.hardness_slider.blockSignals(True)
        self.hardness_slider.setValue(round(h * 100))
        self.hardness_slider.blockSignals(False)

    def _pick_color(self) -> None:
        color = QColorDialog.getColor(self._canvas.overlay_color(), self, "Mask overlay colour")
        if color.isValid():
            self._canvas.set_overlay(color=color)

    def _swatch(self, color: QColor) -> QIcon:
        # A rounded swatch with a palette-coloured rim, so it reads on dark and light themes.
        side = self.fontMetrics().height()
        pixmap = QPixmap(round(side * self.devicePixelRatioF()), round(side * self.devicePixelRatioF()))
        pixmap.setDevicePixelRatio(self.devicePixelRatioF())
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.WindowText), 1))
        painter.setBrush(color)
        painter.drawRoundedRect(QRectF(0.5, 0.5, side - 1, side - 1), 3, 3)
        painter.end()
        return QIcon(pixmap)

    def _sync_overlay(self) -> None:
        self.color_button.setIcon(self._swatch(self._canvas.overlay_color()))
        opacity = self._canvas.overlay_opacity()
        self.opacity_label.setText(f"{round(opacity * 100)} %")
        self.opacity_slider.blockSignals(True)
        self.opacity_slider.setValue(round(opacity * 100))
        self.opacity_slider.blockSignals(False)

    def _sync_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f} %")

    def _sync_mask_buttons(self) -> None:
        control = self._canvas.control_mode()
        self.clear_button.setEnabled(self._canvas.has_control() if control else self._canvas.has_mask())
        self.preview_button.setEnabled(control and self._canvas.has_control())
        if self.preview_button.isChecked() and not self._canvas.is_previewing_control():
            self.preview_button.setChecked(False)  # the layer changed or was left: the preview is gone

    def _sync_control_mode(self, on: bool) -> None:
        """The tools say which layer they work on; Invert is for the mask only."""
        self.control_button.setChecked(on)
        self.invert_button.setEnabled(not on)
        if on:
            self.brush_button.setToolTip("Brush: draw white lines on the control layer (B)")
            self.eraser_button.setToolTip("Eraser: paint black, which is empty, on the control layer (E; X swaps)")
            self.clear_button.setToolTip("Clear the control layer (Delete)")
        else:
            self.brush_button.setToolTip("Brush: paint the area to repaint (B)")
            self.eraser_button.setToolTip("Eraser: remove from the mask (E; X swaps tools)")
            self.clear_button.setToolTip("Clear the mask (Delete)")
        self._sync_mask_buttons()
