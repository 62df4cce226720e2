"""A banner across the top of the window for errors and notices: readable text, never a traceback dialog."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

NOTICE_MS = 6000


class MessageBanner(QFrame):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = QLabel()
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setObjectName("bannerClose")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def show_error(self, text: str) -> None:
        """An error stays until dismissed or replaced."""
        self._show(text, "error")
        self._timer.stop()

    def show_notice(self, text: str) -> None:
        """A notice fades after a few seconds."""
        self._show(text, "notice")
        self._timer.start(NOTICE_MS)

    def _show(self, text: str, kind: str) -> None:
        self.label.setText(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.show()
