"""The studio's settings, kept as JSON in the platformdirs config folder.

A settings file that cannot be read is moved aside (settings.json.corrupt-<time>)
and defaults are used; ``load_settings`` says so in its message for the window.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .files import write_text_atomic
from .panel_values import PanelValues

DEVICES = ("auto", "cpu", "cuda", "mps")
THEMES = ("dark", "light")


@dataclass(frozen=True)
class Settings:
    model_folders: tuple[str, ...] = ()
    device: str = "auto"
    threads: int = 0  # 0: let torch choose
    theme: str = "dark"
    panel: PanelValues = field(default_factory=PanelValues)
    window_geometry: str = ""  # hex of QWidget.saveGeometry()

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_folders"] = list(self.model_folders)
        data["panel"] = self.panel.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        default = cls()
        changes: dict[str, Any] = {}
        folders = data.get("model_folders")
        if isinstance(folders, list) and all(isinstance(f, str) for f in folders):
            changes["model_folders"] = tuple(folders)
        if data.get("device") in DEVICES:
            changes["device"] = data["device"]
        if isinstance(data.get("threads"), int) and not isinstance(data["threads"], bool) and data["threads"] >= 0:
            changes["threads"] = data["threads"]
        if data.get("theme") in THEMES:
            changes["theme"] = data["theme"]
        if isinstance(data.get("window_geometry"), str):
            changes["window_geometry"] = data["window_geometry"]
        changes["panel"] = PanelValues.from_json(data.get("panel"))
        return replace(default, **changes)


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    message: str | None = None  # for the window when the file was set aside


def load_settings(path: Path) -> LoadedSettings:
    if not path.exists():
        return LoadedSettings(Settings())
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the file does not hold a JSON object")
        return LoadedSettings(Settings.from_json(data))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.replace(aside)
            where = f"it was moved to {aside.name}"
        except OSError:
            where = "it was left in place"
        return LoadedSettings(Settings(), f"Settings could not be read ({exc}); using defaults — {where}.")


def save_settings(path: Path, settings: Settings) -> None:
    write_text_atomic(path, json.dumps(settings.to_json(), indent=2, ensure_ascii=False))


SETTINGS_FIELDS = tuple(f.name for f in fields(Settings))
