"""Settings: model folders (checkpoints, LoRAs, embeddings, ControlNets), device, GPU memory, threads, theme, and
the engine (this computer or a studio server).

Device and threads apply at the next start; new folders are searched at once; the engine switches at once; GPU
memory moves the loaded model's parts at once."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..state.settings import DEVICES, THEMES, Settings
from .engine_choice_box import EngineChoiceBox
from .panel_boxes import FocusCombo, NumberBox

# Settings → GPU memory, in the order of engine/memory_modes.py's OFFLOAD_MODES.
GPU_MEMORY_LABELS = {
    "auto": "Automatic (the fastest that fits)",
    "none": "Keep everything on the GPU",
    "model": "One part at a time (model offload)",
    "sequential": "Stream the transformer's blocks (sequential)",
}
GPU_MEMORY_TIP = ("Where the parts of a large model (SD 3.x, Flux.1, Z-Image) live while it runs. One part at a time "
                  "keeps only the text encoders, the transformer or the VAE on the GPU, the others in CPU memory; "
                  "streaming also moves the transformer in block by block: the least GPU memory, the slowest. "
                  "Automatic picks the fastest that fits when the model loads; the model card says which.")


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(460)
        self.folders = QListWidget()
        self.folders.addItems(list(settings.model_folders))
        add = QPushButton("Add folder…")
        remove = QPushButton("Remove")
        add.clicked.connect(self._add_folder)
        remove.clicked.connect(lambda: [self.folders.takeItem(self.folders.row(i))
                                        for i in self.folders.selectedItems()])
        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(add)
        folder_buttons.addWidget(remove)
        folder_buttons.addStretch(1)

        # Every box here ignores the wheel unless focused, as the panel's do: scrolling past must not change them.
        self.device = FocusCombo()
        for device in DEVICES:
            self.device.addItem({"auto": "Automatic (GPU when present)", "cpu": "CPU", "cuda": "CUDA GPU",
                                 "mps": "Apple GPU (MPS)"}[device], device)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        self.gpu_memory = FocusCombo()
        for mode, label in GPU_MEMORY_LABELS.items():
            self.gpu_memory.addItem(label, mode)
        self.gpu_memory.setCurrentIndex(max(0, self.gpu_memory.findData(settings.gpu_memory)))
        self.gpu_memory.setToolTip(GPU_MEMORY_TIP)
        self.threads = NumberBox(0, 256)
        self.threads.setSpecialValueText("Automatic")
        self.threads.setValue(settings.threads)
        self.theme = FocusCombo()
        for theme in THEMES:
            self.theme.addItem(theme.capitalize(), theme)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))

        form = QFormLayout()
        form.addRow("Device", self.device)
        form.addRow("GPU memory", self.gpu_memory)
        form.addRow("CPU threads", self.threads)
        form.addRow("Theme", self.theme)
        note = QLabel("Device and threads take effect the next time the studio starts; GPU memory at once.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.engine_box = EngineChoiceBox(settings)
        buttons.accepted.connect(lambda: self.engine_box.check() and self.accept())
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        self.folders_label = QLabel(
            "Model folders: where the studio finds checkpoints, and the LoRAs, embeddings and ControlNets "
            "beside them (AUTOMATIC1111's models/Lora, embeddings, models/ControlNet; ComfyUI's models/loras, "
            "models/controlnet). A Lora, loras, embeddings or ControlNet folder can also be added by itself.")
        self.folders_label.setWordWrap(True)
        self.folders.setToolTip("A checkpoint folder (models/Stable-diffusion, models/checkpoints), a tool's "
                                "models folder, or a LoRA, embeddings or ControlNet folder")
        layout.addWidget(self.folders_label)
        layout.addWidget(self.folders)
        layout.addLayout(folder_buttons)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.engine_box)
        layout.addWidget(buttons)
        self._base = settings

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model, LoRA or embeddings folder")
        if folder:
            self.folders.addItem(folder)

    def settings(self) -> Settings:
        folders = tuple(self.folders.item(i).text() for i in range(self.folders.count()))
        return self._base.with_changes(model_folders=folders, device=self.device.currentData(),
                                       gpu_memory=self.gpu_memory.currentData(), threads=self.threads.value(),
                                       theme=self.theme.currentData(), **self.engine_box.changes())
