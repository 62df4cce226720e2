"""Holds a wide toolbar: it scrolls sideways (with a thin bar) only when the window is narrower than it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QScrollArea, QWidget


class ToolbarScroller(QScrollArea):
    def __init__(self, toolbar: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("toolbarScroller")
        self.setWidget(toolbar)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._fit_height()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        toolbar = self.widget()
        needs_bar = self.width() < toolbar.minimumSizeHint().width()
        bar = self.horizontalScrollBar().sizeHint().height() if needs_bar else 0
        self.setFixedHeight(toolbar.sizeHint().height() + bar)
