"""A horizontal slider that marks chosen values under its groove (the step where the SDXL refiner took over)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPolygon
from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider, QWidget

MARK_COLOR = QColor("#e0a030")
MARK_SIZE = 4  # half-width of the triangle, pixels


class MarkedSlider(QSlider):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._marks: tuple[int, ...] = ()

    def marks(self) -> tuple[int, ...]:
        return self._marks

    def set_marks(self, values: tuple[int, ...], tooltip: str = "") -> None:
        if values != self._marks:
            self._marks = values
            self.update()
        self.setToolTip(tooltip)

    def mark_x(self, value: int) -> int:
        """The x (in widget pixels) of the handle's centre when the slider is at ``value``."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, groove.width() - handle.width())
        offset = QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), value, span, opt.upsideDown)
        return groove.left() + offset + handle.width() // 2

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(event)
        if not self._marks:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(MARK_COLOR)
        bottom = self.height() - 1
        for value in self._marks:
            if self.minimum() <= value <= self.maximum():
                x = self.mark_x(value)
                p.drawPolygon(QPolygon([QPoint(x - MARK_SIZE, bottom), QPoint(x + MARK_SIZE, bottom),
                                        QPoint(x, bottom - MARK_SIZE - 1)]))
        p.end()
