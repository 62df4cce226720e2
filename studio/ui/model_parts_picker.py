"""Opens the Text encoders / VAE dialog for the picked flow model, keeps the choice in the settings (per model
key) and hands it to the engine, which reloads the model with those files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from ..state.jobs import SD_PREFIX
from ..state.model_parts import ModelParts
from .model_parts_dialog import FileChooser, ModelPartsDialog, choose_files

if TYPE_CHECKING:
    from .studio_controller import StudioController


class ModelPartsPicker(QObject):
    def __init__(self, controller: StudioController, chooser: FileChooser = choose_files):
        super().__init__(controller)
        self.controller = controller
        self.chooser = chooser
        self.dialog: ModelPartsDialog | None = None
        controller.window.panel.parts_requested.connect(self.ask)

    def ask(self, key: str) -> None:
        """Open the dialog (not modal to the engine: the window keeps running); OK applies it."""
        panel = self.controller.window.panel
        label = panel.model.currentText() or key
        parts = self.controller.settings.model_parts.get(key, ModelParts())
        folder = str(_model_folder(key))
        self.dialog = ModelPartsDialog(label, parts, folder, self.controller.window, self.chooser)
        self.dialog.accepted.connect(lambda: self.apply(key, self.dialog.parts()))
        self.dialog.open()

    def apply(self, key: str, parts: ModelParts) -> None:
        chosen = dict(self.controller.settings.model_parts)
        if parts.empty:
            chosen.pop(key, None)
        else:
            chosen[key] = parts
        self.controller.settings = self.controller.settings.with_changes(model_parts=chosen)
        self.controller.save_settings()
        if self.controller.engine.started:
            self.controller.engine.set_model_parts(chosen)
            self.controller.engine.preload(key)  # load it with them now: the answer shows what was read


def _model_folder(key: str) -> Path:
    path = Path(key[len(SD_PREFIX):]) if key.startswith(SD_PREFIX) else Path.home()
    return path.parent if path.suffix else path
