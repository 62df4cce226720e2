"""The Upscale dialog: which upscaler (Lanczos or a model file the engine found), how many times larger,
the size that makes, and while it runs a progress bar per tile with Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

LANCZOS_LABEL = "Lanczos"
MAX_OUTPUT_PIXELS = 8192 * 8192  # the largest image the studio opens (io/png.py)


class UpscaleDialog(QDialog):
    """Emits ``upscale_requested(upscaler, scale)`` from Upscale and ``cancel_requested`` while one runs."""

    upscale_requested = Signal(str, float)
    cancel_requested = Signal()

    def __init__(self, source: str, width: int, height: int, upscalers: list[str], chosen: str = LANCZOS_LABEL,
                 scale: float = 4.0, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Upscale")
        self.setObjectName("upscaleDialog")
        self.source_size = (width, height)
        self.running = False
        self.upscaler = QComboBox()
        self.upscaler.setObjectName("upscaler")
        self.upscaler.setToolTip("Lanczos needs no file. Upscaler models (ESRGAN, Real-ESRGAN, SwinIR, DAT, ...) "
                                 "come from A1111's models/ESRGAN and ComfyUI's models/upscale_models beside your "
                                 "model folders.")
        self.set_upscalers(upscalers, chosen)
        self.scale = QDoubleSpinBox()
        self.scale.setObjectName("scale")
        self.scale.setRange(1.0, 8.0)
        self.scale.setSingleStep(0.5)
        self.scale.setDecimals(2)
        self.scale.setSuffix(" ×")
        self.scale.setValue(scale)
        self.result_label = QLabel()
        self.result_label.setObjectName("hint")
        self.error_label = QLabel()
        self.error_label.setObjectName("errorText")
        self.error_label.setStyleSheet("color: #e0605a")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.progress = QProgressBar()
        self.progress.hide()

        form = QFormLayout()
        form.addRow("Image", QLabel(f"{source}, {width}x{height}"))
        form.addRow("Upscaler", self.upscaler)
        form.addRow("Scale", self.scale)
        form.addRow("Result", self.result_label)
        self.buttons = QDialogButtonBox()
        self.upscale_button = QPushButton("Upscale")
        self.upscale_button.setDefault(True)
        self.buttons.addButton(self.upscale_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.upscale_button.clicked.connect(self._request)
        self.close_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        self.scale.valueChanged.connect(self._show_result_size)
        self._show_result_size()
        self.setMinimumWidth(380)

    def set_upscalers(self, names: list[str], chosen: str | None = None) -> None:
        """Lanczos first, then the model files by name; the choice is kept when it is still there."""
        keep = chosen if chosen is not None else self.upscaler.currentText()
        self.upscaler.blockSignals(True)
        self.upscaler.clear()
        self.upscaler.addItems([LANCZOS_LABEL, *names])
        index = self.upscaler.findText(keep, Qt.MatchFlag.MatchFixedString)
        self.upscaler.setCurrentIndex(max(0, index))
        self.upscaler.blockSignals(False)

    def chosen(self) -> str:
        return self.upscaler.currentText()

    def _size(self) -> tuple[int, int]:
        w, h = self.source_size
        s = self.scale.value()
        return max(1, round(w * s)), max(1, round(h * s))

    def _show_result_size(self) -> None:
        w, h = self._size()
        too_large = w * h > MAX_OUTPUT_PIXELS
        self.result_label.setText(f"{w}x{h}" + ("  (too large: the studio opens up to 8192x8192)" if too_large
                                                 else ""))
        self.upscale_button.setEnabled(not too_large and not self.running)

    def _request(self) -> None:
        if self.running:
            return
        self.upscale_requested.emit(self.chosen(), self.scale.value())

    # -- while it runs -----------------------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.error_label.hide()
        for widget in (self.upscaler, self.scale, self.upscale_button):
            widget.setEnabled(False)
        self.progress.setRange(0, 0)  # busy until the first tile is done
        self.progress.show()

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"tile {done} of {total}")

    def stop(self, message: str = "") -> None:
        """Back to choosing, with ``message`` (why it did not finish) shown."""
        self.running = False
        self.progress.hide()
        for widget in (self.upscaler, self.scale, self.close_button):
            widget.setEnabled(True)
        self._show_result_size()
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def reject(self) -> None:
        if self.running:  # Cancel (or Escape) while it runs stops the upscale; the dialog closes when it has
            self.cancel_requested.emit()
            self.close_button.setEnabled(False)
            return
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.running:
            self.cancel_requested.emit()
            event.ignore()
            return
        super().closeEvent(event)
