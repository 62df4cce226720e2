"""The status bar's contents: the latest message, engine state, run progress (step n of N, it/s, time left),
queue, Cancel.

QStatusBar paints its messages only in the space its permanent widgets leave free, and this strip is one
permanent widget that spans the bar; so the strip shows the bar's messages itself, on the left, in the
room the progress widgets leave while no image is running.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from ..state.progress import Progress
from .elided_label import ElidedLabel


class StatusStrip(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.message_label = ElidedLabel("")
        self.message_label.setObjectName("statusMessage")
        self.engine_label = QLabel("Starting…")
        self.engine_label.setObjectName("engineStatus")
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("progressText")
        self.progress_label.setMinimumWidth(260)  # steady while the numbers change
        self.queue_label = QLabel("")
        self.queue_label.setObjectName("queueText")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the running image and clear the queue (Esc)")
        self.cancel_button.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        layout.setSpacing(12)
        layout.addWidget(self.message_label, 1)
        layout.addWidget(self.engine_label)
        layout.addWidget(self.queue_label)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        self.set_progress(None)

    def attach(self, bar: QStatusBar) -> None:
        """Span ``bar`` and show its messages (``showMessage``, with their timeouts) in the message label."""
        bar.addPermanentWidget(self, 1)
        bar.setSizeGripEnabled(False)
        bar.messageChanged.connect(self.message_label.setText)

    def set_engine_status(self, text: str) -> None:
        self.engine_label.setText(text)

    def set_progress(self, progress: Progress | None) -> None:
        running = progress is not None
        self.progress.setVisible(running)
        self.progress_label.setVisible(running)
        if progress is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress_label.setText("")
            return
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.step)
        self.progress_label.setText(progress.text())

    def set_queue(self, running: bool, waiting: int) -> None:
        self.cancel_button.setEnabled(running or waiting > 0)
        self.queue_label.setText(f"{waiting} waiting" if waiting else "")
