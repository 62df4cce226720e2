"""What the studio's prompt panel asks a server besides runs: the adapter files it can use, and what a model makes
of a prompt (the line under the prompt box). Answered by the ingress, never queued behind the replicas' runs.

Ray-free (app.py puts it behind ``GET /v1/adapters`` and ``POST /v1/prompts/describe``). Adapter files are
listed from the server's own model folders only (and those beside a listed checkpoint), by name: their paths on
the server are not sent. Descriptions come from the built-in models that offer one (the embedded emoji model
names the closest emoji it knows), loaded once on the CPU here; other models have none, as in the studio.
"""

from __future__ import annotations

import threading
from typing import Any

from ..engine.models.registry import BUILTIN, SD_PREFIX, load_model
from ..engine.models.sd.adapter_files import KINDS, AdapterLibrary

MAX_PROMPT_CHARS = 20_000  # a prompt to describe; longer ones are refused (400)


class PromptHelp:
    def __init__(self, model_folders: tuple[str, ...]):
        self.model_folders = tuple(model_folders)
        self._libraries: dict[str, AdapterLibrary] = {}
        self._describers: dict[str, Any] = {}  # model key -> a loaded built-in model, or None: it does not describe
        self._lock = threading.Lock()  # describing (a model may load meanwhile)
        self._list_lock = threading.Lock()  # listing folders

    def adapters(self, model_key: str) -> dict[str, list[str]]:
        """The names of each kind of adapter file a run of ``model_key`` may use (KINDS: lora, embedding,
        controlnet, upscaler), sorted as the studio lists them."""
        with self._list_lock:
            library = self._library(model_key)
            library.rescan()  # the picker was opened: files copied in since show up
            return {kind: [a.name for a in library.list(kind)] for kind in KINDS}

    def describe(self, model_key: str, prompt: str) -> str:
        """What ``model_key`` makes of ``prompt``: "" for a model that cannot say (as the studio's line stays
        hidden). The catalog has resolved the key: it is one the server lists."""
        with self._lock:  # one load per model, however many windows ask at once
            if model_key not in self._describers:
                builtin = {entry.key for entry in BUILTIN}
                model = load_model(model_key, "cpu") if model_key in builtin else None
                self._describers[model_key] = model if hasattr(model, "describe_prompt") else None
            model = self._describers[model_key]
            return model.describe_prompt(prompt) if model is not None else ""

    def _library(self, model_key: str) -> AdapterLibrary:
        if model_key not in self._libraries:
            checkpoint = model_key[len(SD_PREFIX):] if model_key.startswith(SD_PREFIX) else None
            # As a replica resolves a run's names: the server's folders only, names only, never a path.
            self._libraries[model_key] = AdapterLibrary(self.model_folders, checkpoint, include_defaults=False,
                                                        allow_paths=False)
        return self._libraries[model_key]
