"""The line under the prompt box saying what the loaded model makes of the prompt.

Only models that can say something offer it (the embedded emoji model names the
closest emoji it knows, so "a car on a street at night" visibly means "automobile");
for others the line stays hidden. Asked a moment after typing stops, answered by
the engine thread; an answer to an older question is dropped.

Above that, before Generate: a ``<lora:...>`` tag the engine would refuse, because it
cannot read it or because its name matches none of the LoRA files the engine listed
(with the closest names, in the engine's own words).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Slot

from ..engine.adapter_names import match_name, not_found_message
from ..engine.extra_networks import extract_loras
from ..engine.request import RequestError
from ..worker import EngineClient
from .prompt_panel import PromptPanel

WARNING = "⚠ "


def lora_problems(prompt: str, names: Sequence[str]) -> str:
    """What the engine would say about the prompt's LoRA tags, given the LoRA files it found; "" when nothing."""
    try:
        _, tags = extract_loras(prompt)
    except RequestError as exc:
        return _sentence(str(exc).removeprefix(f"{exc.field}: "))
    missing = [not_found_message("lora", tag.name, names) for tag in tags
               if match_name(tag.name, names) is None and not _is_file(tag.name)]
    return "; ".join(_sentence(m) for m in missing)


def _is_file(name: str) -> bool:
    # As the engine: a name with a suffix or a slash may be a path to the file itself.
    path = Path(name).expanduser()
    try:
        return bool(name) and (bool(path.suffix) or "/" in name or "\\" in name) and path.exists()
    except (OSError, ValueError):
        return False


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]

DEBOUNCE_MS = 250


class PromptHint(QObject):
    def __init__(self, panel: PromptPanel, engine: EngineClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panel = panel
        self._engine = engine
        self._token = 0
        self._asked: tuple[str, str] | None = None
        self._described = ""  # the engine's last answer
        self._problems = ""  # what is wrong with the prompt's LoRA tags
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.ask)
        panel.prompt.textChanged.connect(self._timer.start)
        engine.model_loaded.connect(self._on_model_loaded)
        engine.described.connect(self._on_described)
        panel.adapters_changed.connect(self._check_loras)

    @Slot(object)
    def _on_model_loaded(self, _choice: object) -> None:
        self.ask(force=True)

    def ask(self, force: bool = False) -> None:
        values = self._panel.values()
        self._check_loras()
        question = (values.model, values.prompt)
        if question == self._asked and not force:
            return
        self._asked = question
        self._token = self._engine.describe(*question)

    @Slot(int, str)
    def _on_described(self, token: int, text: str) -> None:
        if token == self._token:
            self._described = text
            self._show()

    def _check_loras(self) -> None:
        panel = self._panel
        names = [choice.name for choice in panel.adapters.loras]
        self._problems = lora_problems(panel.prompt.toPlainText(), names) if panel.adapters_listed else ""
        self._show()

    def _show(self) -> None:
        problems = WARNING + self._problems if self._problems else ""
        self._panel.set_prompt_hint("\n".join(t for t in (problems, self._described) if t))
