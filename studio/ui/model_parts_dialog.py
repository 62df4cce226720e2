"""The "Text encoders / VAE" dialog: the files a split SD 3.x / Flux.1 / Z-Image model reads its prompt and
decodes with, when they are not beside it (models/text_encoders, models/vae) or the wrong ones were found."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..state.model_parts import MAX_ENCODERS, ModelParts

WEIGHTS_FILTER = "Model weights (*.safetensors *.gguf *.pt *.pth *.bin *.ckpt);;All files (*)"
# (parent, title, folder, several) -> chosen paths; a test puts its own in place of the file dialog
FileChooser = Callable[[QWidget, str, str, bool], list[str]]


def choose_files(parent: QWidget, title: str, folder: str, several: bool) -> list[str]:
    if several:
        return QFileDialog.getOpenFileNames(parent, title, folder, WEIGHTS_FILTER)[0]
    path = QFileDialog.getOpenFileName(parent, title, folder, WEIGHTS_FILTER)[0]
    return [path] if path else []


class ModelPartsDialog(QDialog):
    def __init__(self, model_label: str, parts: ModelParts, folder: str = "", parent: QWidget | None = None,
                 chooser: FileChooser = choose_files):
        super().__init__(parent)
        self.setObjectName("modelPartsDialog")
        self.setWindowTitle(f"Text encoders / VAE · {model_label}")
        self._folder = folder
        self._chooser = chooser
        intro = QLabel("The studio finds a model's text encoders and VAE beside it (models/text_encoders, "
                       "models/clip, models/vae) by what the files hold. Pick them here when they are elsewhere; "
                       "the empty ones are still looked for there.")
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        self.encoders = QListWidget()
        self.encoders.setObjectName("encoderList")
        self.encoders.addItems(list(parts.text_encoders))
        self.encoders.setMinimumHeight(84)
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip("CLIP-L, CLIP-G, T5-XXL or Qwen3 files: .safetensors (fp16, fp8), .gguf")
        self.remove_button = QPushButton("Remove")
        self.vae = QLineEdit(parts.vae)
        self.vae.setObjectName("vaePath")
        self.vae.setPlaceholderText("found beside the model")
        self.vae.setClearButtonEnabled(True)
        browse = QPushButton("Browse…")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(QLabel("Text encoders"))
        row = QHBoxLayout()
        row.addWidget(self.encoders, 1)
        side = QVBoxLayout()
        side.addWidget(self.add_button)
        side.addWidget(self.remove_button)
        side.addStretch(1)
        row.addLayout(side)
        layout.addLayout(row)
        layout.addWidget(QLabel("VAE"))
        vae_row = QHBoxLayout()
        vae_row.addWidget(self.vae, 1)
        vae_row.addWidget(browse)
        layout.addLayout(vae_row)
        layout.addWidget(buttons)
        self.resize(560, 300)

        self.add_button.clicked.connect(self._add_encoders)
        self.remove_button.clicked.connect(self._remove_encoder)
        browse.clicked.connect(self._browse_vae)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.encoders.currentRowChanged.connect(self._sync)
        self._sync()

    def parts(self) -> ModelParts:
        encoders = tuple(self.encoders.item(i).text() for i in range(self.encoders.count()))
        return ModelParts(encoders, self.vae.text().strip())

    def _sync(self) -> None:
        self.add_button.setEnabled(self.encoders.count() < MAX_ENCODERS)
        self.remove_button.setEnabled(self.encoders.currentRow() >= 0)

    def _add_encoders(self) -> None:
        have = {self.encoders.item(i).text() for i in range(self.encoders.count())}
        for path in self._chooser(self, "Text encoder files", self._folder, True):
            if path not in have and self.encoders.count() < MAX_ENCODERS:
                self.encoders.addItem(path)
                self._folder = str(Path(path).parent)
        self._sync()

    def _remove_encoder(self) -> None:
        row = self.encoders.currentRow()
        if row >= 0:
            self.encoders.takeItem(row)
        self._sync()

    def _browse_vae(self) -> None:
        chosen = self._chooser(self, "VAE file", self._folder, False)
        if chosen:
            self.vae.setText(chosen[0])
            self._folder = str(Path(chosen[0]).parent)
