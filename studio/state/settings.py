"""The studio's settings, kept as JSON in the platformdirs config folder.

A settings file that cannot be read is moved aside (settings.json.corrupt-<time>)
and defaults are used; ``load_settings`` says so in its message for the window.

The studio server's token is a setting too, but it is kept apart (token_store.py: the OS keyring, or a file only
the user can read) and never written into settings.json; a settings.json that still holds one is migrated on load.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..engine.memory_modes import OFFLOAD_MODES
from ..io.safe_json import load_json_file
from .files import set_aside, write_text_atomic
from .model_parts import ModelParts, parts_from_json
from .panel_values import PanelValues
from .token_store import TokenStore

DEVICES = ("auto", "cpu", "cuda", "mps")
THEMES = ("dark", "light")
ENGINES = ("local", "server")  # this computer's engine thread, or a studio server (python -m studio serve)
MAX_THREADS = 256  # the settings dialog's thread box goes this far
_HEX = re.compile(r"[0-9a-fA-F]*")


def _usable_folder(text: object) -> bool:
    # A NUL or a lone surrogate makes every path call on it raise (ValueError, UnicodeEncodeError).
    if not isinstance(text, str) or not text or "\0" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def usable_token(text: str) -> bool:
    """Whether ``text`` can be a Bearer token: printable, no spaces or line breaks inside, not too long."""
    token = text.strip()
    return len(token) <= 2048 and token.isprintable() and not any(c.isspace() for c in token)


@dataclass(frozen=True)
class Settings:
    model_folders: tuple[str, ...] = ()
    device: str = "auto"
    threads: int = 0  # 0: let torch choose
    gpu_memory: str = "auto"  # where a large model's parts live: one of OFFLOAD_MODES (engine/memory_modes.py)
    theme: str = "dark"
    panel: PanelValues = field(default_factory=PanelValues)
    window_geometry: str = ""  # hex of QWidget.saveGeometry()
    export_folder: str = ""  # where the last export went: the export dialogs open there
    advanced_open: bool = False  # the prompt panel's Advanced fold, as the user left it
    model_parts: dict[str, ModelParts] = field(default_factory=dict)  # model key -> encoder / VAE files picked
    engine: str = "local"  # see ENGINES
    server_url: str = ""  # the studio server's address, kept when "local" is picked again
    # Its token (sent as a Bearer header): kept apart by token_store.py, never in settings.json nor in a repr.
    server_token: str = field(default="", repr=False)

    @property
    def on_server(self) -> bool:
        """Whether the studio runs its jobs on a studio server (with an address to reach it at)."""
        return self.engine == "server" and bool(self.server_url.strip())

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_folders"] = list(self.model_folders)
        data["panel"] = self.panel.to_json()
        data["model_parts"] = {key: parts.to_json() for key, parts in self.model_parts.items()}
        del data["server_token"]  # kept apart (token_store.py)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        default = cls()
        changes: dict[str, Any] = {}
        folders = data.get("model_folders")
        if isinstance(folders, list):
            changes["model_folders"] = tuple(f for f in folders if _usable_folder(f))
        if data.get("device") in DEVICES:
            changes["device"] = data["device"]
        if data.get("gpu_memory") in OFFLOAD_MODES:
            changes["gpu_memory"] = data["gpu_memory"]
        threads = data.get("threads")
        if isinstance(threads, int) and not isinstance(threads, bool) and 0 <= threads <= MAX_THREADS:
            changes["threads"] = threads
        if data.get("theme") in THEMES:
            changes["theme"] = data["theme"]
        geometry = data.get("window_geometry")
        if isinstance(geometry, str) and _HEX.fullmatch(geometry):
            changes["window_geometry"] = geometry
        if _usable_folder(data.get("export_folder")):
            changes["export_folder"] = data["export_folder"]
        if isinstance(data.get("advanced_open"), bool):
            changes["advanced_open"] = data["advanced_open"]
        if data.get("engine") in ENGINES:
            changes["engine"] = data["engine"]
        url = data.get("server_url")
        if isinstance(url, str) and "\0" not in url and len(url) <= 2048:
            changes["server_url"] = url
        token = data.get("server_token")  # only in a settings.json from before it was kept apart
        if isinstance(token, str) and usable_token(token):
            changes["server_token"] = token.strip()
        changes["panel"] = PanelValues.from_json(data.get("panel"))
        changes["model_parts"] = parts_from_json(data.get("model_parts"))
        return replace(default, **changes)


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    message: str | None = None  # for the window: the file was set aside, or values in it were adapted
    set_aside: bool = False  # the file could not be read and was moved away (defaults are in use)


def load_settings(path: Path, tokens: TokenStore | None = None) -> LoadedSettings:
    """The settings in ``path``, with the server token from ``tokens`` (by default the store beside ``path``)."""
    tokens = tokens if tokens is not None else TokenStore(path.parent)
    loaded = _load_settings_file(path)
    if loaded.set_aside:
        return loaded
    settings = loaded.settings
    if settings.server_token:  # a settings.json from before the token was kept apart: move it out, once
        try:
            tokens.save(settings.server_token)
            save_settings(path, settings, tokens)
        except OSError as exc:
            return LoadedSettings(settings, f"The server token could not be moved out of {path.name} into "
                                            f"{tokens.where} ({exc}); it is still in plain text there.")
        return loaded
    token = tokens.load()
    return LoadedSettings(settings.with_changes(server_token=token), loaded.message) if token else loaded


def _load_settings_file(path: Path) -> LoadedSettings:
    if not path.exists():
        return LoadedSettings(Settings())
    try:
        data = load_json_file(path)
        if not isinstance(data, dict):
            raise ValueError("the file does not hold a JSON object")
        settings = Settings.from_json(data)
        adapted = PanelValues.from_json_with_notices(data.get("panel"))[1]
        message = (f"Saved settings were adapted to fit: {'; '.join(n.rstrip('.') for n in adapted)}."
                   if adapted else None)
        return LoadedSettings(settings, message)
    except (OSError, ValueError) as exc:
        where = set_aside(path)
        return LoadedSettings(Settings(), f"Settings could not be read ({exc}); using defaults — {where}.",
                              set_aside=True)


def save_settings(path: Path, settings: Settings, tokens: TokenStore | None = None) -> None:
    """settings.json without the token; the token into ``tokens`` (by default the store beside ``path``) when it
    changed. OSError when either cannot be written."""
    tokens = tokens if tokens is not None else TokenStore(path.parent)
    if tokens.load() != settings.server_token.strip():
        tokens.save(settings.server_token)
    write_text_atomic(path, json.dumps(settings.to_json(), indent=2, ensure_ascii=False))


SETTINGS_FIELDS = tuple(f.name for f in fields(Settings))
