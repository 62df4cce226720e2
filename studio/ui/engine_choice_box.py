"""Settings → Engine: run on this computer, or on a studio server (its address and token)."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QLineEdit, QWidget

from ..serve.address import server_url
from ..state.settings import Settings
from .panel_boxes import FocusCombo

ENGINE_LABELS = {"local": "This computer", "server": "Server"}


class EngineChoiceBox(QGroupBox):
    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__("Engine", parent)
        self.engine = FocusCombo()  # the wheel passing over it must not switch engines
        for key, label in ENGINE_LABELS.items():
            self.engine.addItem(label, key)
        self.engine.setCurrentIndex(max(0, self.engine.findData(settings.engine)))
        self.url = QLineEdit(settings.server_url)
        self.url.setPlaceholderText("http://gpu-box:8188")
        self.url.setToolTip("Where `python -m studio serve` listens (https:// behind a TLS proxy)")
        self.token = QLineEdit(settings.server_token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("the server's --token, if it has one")
        self.problem = QLabel()
        self.problem.setObjectName("fieldMessage")
        self.problem.setProperty("kind", "error")  # the theme's red field message
        self.problem.setWordWrap(True)
        self.problem.hide()
        form = QFormLayout(self)
        form.addRow("Run on", self.engine)
        form.addRow("Server", self.url)
        form.addRow("Token", self.token)
        form.addRow(self.problem)
        self.engine.currentIndexChanged.connect(self._update)
        self.url.textChanged.connect(self._clear_problem)
        self._update()

    def _update(self) -> None:
        on_server = self.engine.currentData() == "server"
        self.url.setEnabled(on_server)
        self.token.setEnabled(on_server)

    def _clear_problem(self) -> None:
        self.problem.hide()
        self.url.setProperty("error", False)
        self.url.style().polish(self.url)

    def check(self) -> bool:
        """Whether the choice can work; if not, the box says why (a server needs an address that can work)."""
        if self.engine.currentData() != "server":
            return True
        try:
            server_url(self.url.text())
        except ValueError as exc:
            self.problem.setText(f"The {exc}.")
            self.problem.show()
            self.url.setProperty("error", True)  # outlined, as the panel outlines a field at fault
            self.url.style().polish(self.url)
            self.url.setFocus()
            return False
        return True

    def changes(self) -> dict[str, str]:
        """The Settings fields this box sets."""
        return {"engine": self.engine.currentData(), "server_url": self.url.text().strip(),
                "server_token": self.token.text().strip()}
