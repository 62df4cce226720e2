"""The status bar's contents: engine state, run progress (step n of N, it/s, time left), queue, Cancel."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..state.progress import Progress


class StatusStrip(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.engine_label = QLabel("Starting…")
        self.engine_label.setObjectName("engineStatus")
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("progressText")
        self.progress_label.setMinimumWidth(260)
        self.queue_label = QLabel("")
        self.queue_label.setObjectName("queueText")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setToolTip("Stop the running image and clear the queue (Esc)")
        self.cancel_button.setEnabled(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 0, 8, 0)
        layout.setSpacing(12)
        layout.addWidget(self.engine_label, 1)
        layout.addWidget(self.queue_label)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)

    def set_engine_status(self, text: str) -> None:
        self.engine_label.setText(text)

    def set_progress(self, progress: Progress | None) -> None:
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
