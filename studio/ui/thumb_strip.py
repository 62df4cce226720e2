"""A horizontal strip of step thumbnails: click one to show that step; marks the current step and branch points."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from ..state.qimages import to_qimage

THUMB = 44
GAP = 4


class ThumbStrip(QWidget):
    clicked = Signal(int)
    step_by = Signal(int)  # arrow keys: -1 / +1

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("thumbStrip")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._frames: list[np.ndarray] = []
        self._final: np.ndarray | None = None
        self._pixmaps: dict[int, QPixmap] = {}  # by id() of the frame array: frames are shared, never edited
        self._current = -1
        self._branches: set[int] = set()
        self._first_own = 0
        self.setFixedHeight(THUMB + 2 * GAP + 6)

    def set_frames(self, frames: list[np.ndarray], final: np.ndarray | None, first_own: int,
                   branches: set[int]) -> None:
        old_count = self.count()
        grew = (frames is self._frames and final is self._final and first_own == self._first_own
                and branches == self._branches)
        self._frames = frames
        self._final = final
        self._first_own = first_own
        self._branches = branches
        if grew:  # a step arrived: paint only the new thumbnails, not the whole strip
            for i in range(old_count, self.count()):
                self.update(self.thumb_rect(i).adjusted(-3, -3, 3, 3))
        else:
            live = {id(f) for f in frames} | ({id(final)} if final is not None else set())
            self._pixmaps = {k: v for k, v in self._pixmaps.items() if k in live}
            self.update()
        self.setMinimumWidth(self.count() * (THUMB + GAP) + GAP)

    def count(self) -> int:
        return len(self._frames) + (self._final is not None)

    def set_current(self, index: int) -> None:
        if index != self._current:
            old, self._current = self._current, index
            self.update(self.thumb_rect(old).adjusted(-3, -3, 3, 3))
            self.update(self.thumb_rect(index).adjusted(-3, -3, 3, 3))

    def thumb_rect(self, index: int) -> QRect:
        return QRect(GAP + index * (THUMB + GAP), GAP + 3, THUMB, THUMB)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(self.count() * (THUMB + GAP) + GAP, THUMB + 2 * GAP + 6)

    def _pixmap(self, image: np.ndarray) -> QPixmap:
        key = id(image)
        if key not in self._pixmaps:
            # Scaled once to thumbnail size: painting is then a plain blit, even while the strip scrolls.
            mode = (Qt.TransformationMode.FastTransformation if max(image.shape[:2]) <= THUMB
                    else Qt.TransformationMode.SmoothTransformation)
            self._pixmaps[key] = QPixmap.fromImage(to_qimage(image)).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.IgnoreAspectRatio, mode)
        return self._pixmaps[key]

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        clip = event.rect()
        first = max(0, (clip.left() - GAP) // (THUMB + GAP))
        last = min(self.count() - 1, clip.right() // (THUMB + GAP) + 1)
        for i in range(first, last + 1):
            rect = self.thumb_rect(i)
            image = self._frames[i] if i < len(self._frames) else self._final
            p.drawPixmap(rect, self._pixmap(image))
            if i < self._first_own:  # inherited from the run this one branched from
                p.fillRect(rect, QColor(20, 22, 28, 110))
            if i == len(self._frames):
                p.setPen(QPen(QColor("#7fb0ff"), 1, Qt.PenStyle.DashLine))
                p.drawRect(rect.adjusted(0, 0, -1, -1))
            if i in self._branches:
                p.setBrush(QColor("#f0b429"))
                p.setPen(Qt.PenStyle.NoPen)
                p.drawEllipse(rect.right() - 9, rect.top() - 2, 10, 10)
            if i == self._current:
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(QColor("#4f8cff"), 3))
                p.drawRect(rect.adjusted(-1, -1, 1, 1))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        index = int((event.position().x() - GAP) // (THUMB + GAP))
        if 0 <= index < self.count():
            self.clicked.emit(index)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.step_by.emit(-1)
        elif event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.step_by.emit(1)
        else:
            super().keyPressEvent(event)
