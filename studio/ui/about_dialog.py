"""Help → About: the studio's version, torch, the device, whether CUDA was found (or why not), and where its
files live — the facts ``diffusion-studio --version`` prints.

The window never imports torch: the torch facts come with the engine's catalog, and read "starting…" until it
has arrived (an open box fills them in then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from ..state.about import TorchFacts, about_facts, about_text, device_name

if TYPE_CHECKING:
    from .studio_controller import StudioController


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About Diffusion Studio")
        self.setObjectName("aboutDialog")
        self.rows: list[tuple[str, str]] = []
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy these facts, for a bug report")
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(buttons)
        self.setMinimumWidth(720)  # paths on one line each; the CUDA explanation may wrap

    def set_rows(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows
        while self.form.rowCount():
            self.form.removeRow(0)
        for label, value in rows:
            field = QLabel(value)
            field.setWordWrap(True)
            field.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.form.addRow(f"{label}:", field)

    def value(self, label: str) -> str:
        """The text shown beside ``label``."""
        for row in range(self.form.rowCount()):
            name = self.form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()
            if name.text() == f"{label}:":
                return self.form.itemAt(row, QFormLayout.ItemRole.FieldRole).widget().text()
        raise KeyError(label)

    def text(self) -> str:
        return about_text(self.rows)


class AboutBox(QObject):
    """Opens the About dialog from the Help menu and keeps an open one up to date with the engine."""

    def __init__(self, controller: StudioController):
        super().__init__(controller)
        self.controller = controller
        self.dialog: AboutDialog | None = None
        controller.window.about_action.triggered.connect(self.show)
        controller.engine.ready.connect(self._refresh)  # after the controller has taken in the catalog

    def facts(self) -> list[tuple[str, str]]:
        c = self.controller
        torch = None
        if c.catalog is not None:
            device = f"{device_name(c.catalog.device)} (Settings → device: {c.settings.device})"
            torch = TorchFacts(c.catalog.torch_version, device, c.catalog.cuda_status)
        return about_facts(c.paths, c.settings.model_folders, torch)

    def show(self) -> AboutDialog:
        if self.dialog is None:
            self.dialog = AboutDialog(self.controller.window)
        self.dialog.set_rows(self.facts())
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _refresh(self, _catalog: object = None) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.set_rows(self.facts())
