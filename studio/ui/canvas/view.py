"""Zoom and pan: the mapping between document pixels and widget pixels."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSizeF

MIN_ZOOM = 1.0 / 32.0
MAX_ZOOM = 64.0
WHEEL_STEP = 1.2 ** (1.0 / 120.0)  # per wheel angle unit: one notch (120) zooms by 1.2x
FIT_MARGIN_PX = 12.0


class ViewTransform:
    """widget = image * zoom + offset; a plain value object so it is easy to test.

    ``fitting`` stays true until the user zooms or pans by hand, so resizing the
    window keeps a fitted image fitted, as image viewers and Krita do.
    """

    def __init__(self) -> None:
        self.zoom = 1.0
        self.offset = QPointF(0.0, 0.0)
        self.fitting = True

    def to_image(self, p: QPointF) -> QPointF:
        return QPointF((p.x() - self.offset.x()) / self.zoom, (p.y() - self.offset.y()) / self.zoom)

    def to_widget(self, p: QPointF) -> QPointF:
        return QPointF(p.x() * self.zoom + self.offset.x(), p.y() * self.zoom + self.offset.y())

    def image_rect(self, image_size: QSizeF) -> QRectF:
        """Where the whole document lies on the widget."""
        return QRectF(self.offset, QSizeF(image_size.width() * self.zoom, image_size.height() * self.zoom))

    def map_rect(self, r: QRectF) -> QRectF:
        return QRectF(self.to_widget(r.topLeft()), self.to_widget(r.bottomRight()))

    def fit(self, image_size: QSizeF, viewport: QSizeF) -> None:
        avail_w = max(viewport.width() - 2 * FIT_MARGIN_PX, 1.0)
        avail_h = max(viewport.height() - 2 * FIT_MARGIN_PX, 1.0)
        zoom = min(avail_w / max(image_size.width(), 1.0), avail_h / max(image_size.height(), 1.0))
        self.zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        self.center(image_size, viewport)
        self.fitting = True

    def set_zoom_centered(self, zoom: float, image_size: QSizeF, viewport: QSizeF) -> None:
        self.zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        self.center(image_size, viewport)
        self.fitting = False

    def center(self, image_size: QSizeF, viewport: QSizeF) -> None:
        # Whole widget pixels: a half-pixel offset would blur a 100 % view.
        self.offset = QPointF(
            round((viewport.width() - image_size.width() * self.zoom) / 2.0),
            round((viewport.height() - image_size.height() * self.zoom) / 2.0),
        )

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Zoom by ``factor`` keeping the document point under ``anchor`` (widget coordinates) fixed."""
        new_zoom = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        if new_zoom == self.zoom:
            return
        under = self.to_image(anchor)
        self.zoom = new_zoom
        self.offset = QPointF(anchor.x() - under.x() * new_zoom, anchor.y() - under.y() * new_zoom)
        self.fitting = False

    def pan(self, dx: float, dy: float) -> None:
        self.offset = QPointF(self.offset.x() + dx, self.offset.y() + dy)
        self.fitting = False

    def keep_visible(self, image_size: QSizeF, viewport: QSizeF, margin: float = 48.0) -> None:
        """Stop panning from losing the image: keep at least ``margin`` px of it on screen."""
        w, h = image_size.width() * self.zoom, image_size.height() * self.zoom
        mx, my = min(margin, w), min(margin, h)
        x = min(max(self.offset.x(), mx - w), viewport.width() - mx)
        y = min(max(self.offset.y(), my - h), viewport.height() - my)
        self.offset = QPointF(x, y)
