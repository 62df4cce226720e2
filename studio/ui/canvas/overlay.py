"""Drawing the mask and control overlays so they show over any image.

A tint in one colour vanishes over an image of that colour (a red mask over a red apple). Over the
tint the masked area gets diagonal stripes, a light one and a dark one side by side: over any image at
least one of them contrasts. The stripes are laid out in widget pixels, so they keep their width at
every zoom, and they follow the mask's soft edges (its alpha).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QImage, QPainter

HATCH_PERIOD = 12  # widget pixels between stripe pairs
STRIPE = 2  # width of the light and of the dark stripe


def _hatch_tile() -> QImage:
    y, x = np.mgrid[0:HATCH_PERIOD, 0:HATCH_PERIOD]
    phase = (x + y) % HATCH_PERIOD
    tile = np.zeros((HATCH_PERIOD, HATCH_PERIOD, 4), np.uint8)  # premultiplied BGRA / ARGB: opaque grey levels
    tile[phase < STRIPE] = 255
    tile[(phase >= STRIPE) & (phase < 2 * STRIPE)] = (0, 0, 0, 255)
    image = QImage(tile.data, HATCH_PERIOD, HATCH_PERIOD, HATCH_PERIOD * 4, QImage.Format.Format_ARGB32_Premultiplied)
    return image.copy()  # owns its pixels


_HATCH: QBrush | None = None


def hatch_brush() -> QBrush:
    global _HATCH
    if _HATCH is None:  # a QBrush needs the QGuiApplication: made on first use, not at import
        _HATCH = QBrush(_hatch_tile())
    return _HATCH


def paint_mask_overlay(painter: QPainter, overlay: QImage, target: QRectF, clip: QRect, opacity: float,
                       smooth: bool) -> None:
    """Draw ``overlay`` (the tinted mask, premultiplied ARGB) into ``target``, striped, at ``opacity``."""
    area = target.toAlignedRect().intersected(clip)
    if area.isEmpty():
        return
    layer = QImage(area.size(), QImage.Format.Format_ARGB32_Premultiplied)
    layer.fill(Qt.GlobalColor.transparent)
    lp = QPainter(layer)
    lp.translate(-area.x(), -area.y())  # widget coordinates: the stripes stay put across partial repaints
    lp.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
    lp.drawImage(target, overlay)
    lp.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceAtop)  # stripes only where masked
    lp.fillRect(area, hatch_brush())
    lp.end()
    painter.setOpacity(opacity)
    painter.drawImage(area.topLeft(), layer)
    painter.setOpacity(1.0)


CONTROL_VEIL = 0.5  # how far the image is darkened under the control layer


def paint_control_overlay(painter: QPainter, control: QImage, target: QRectF, smooth: bool) -> None:
    """Draw the control layer (white lines on black) over the image in ``target``.

    White lines drawn plainly vanish over a light image, and the layer drawn as it is (black where
    empty) would hide the image the lines are meant to follow. So the image is dimmed by a black veil
    and the layer laid over it with Lighten: its lines are full white (or its loaded image at full
    strength), its black lets the dimmed image through, and what shows is what the engine reads.
    """
    painter.save()
    painter.setOpacity(CONTROL_VEIL)
    painter.fillRect(target, Qt.GlobalColor.black)
    painter.setOpacity(1.0)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Lighten)
    painter.drawImage(target, control)
    painter.restore()
