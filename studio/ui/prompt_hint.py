"""The line under the prompt box saying what the loaded model makes of the prompt.

Only models that can say something offer it (the embedded emoji model names the
closest emoji it knows, so "a car on a street at night" visibly means "automobile");
for others the line stays hidden. Asked a moment after typing stops, answered by
the engine thread; an answer to an older question is dropped.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Slot

from ..worker import EngineClient
from .prompt_panel import PromptPanel

DEBOUNCE_MS = 250


class PromptHint(QObject):
    def __init__(self, panel: PromptPanel, engine: EngineClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panel = panel
        self._engine = engine
        self._token = 0
        self._asked: tuple[str, str] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.ask)
        panel.prompt.textChanged.connect(self._timer.start)
        engine.model_loaded.connect(self._on_model_loaded)
        engine.described.connect(self._on_described)

    @Slot(object)
    def _on_model_loaded(self, _choice: object) -> None:
        self.ask(force=True)

    def ask(self, force: bool = False) -> None:
        values = self._panel.values()
        question = (values.model, values.prompt)
        if question == self._asked and not force:
            return
        self._asked = question
        self._token = self._engine.describe(*question)

    @Slot(int, str)
    def _on_described(self, token: int, text: str) -> None:
        if token == self._token:
            self._panel.set_prompt_hint(text)
