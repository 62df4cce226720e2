"""The models a server offers: its own model folders and the built-in models, nothing else.

A request names one of these keys or nothing (the default); any other text, a path included, is refused
before anything is opened (HTTP 404).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.models.registry import default_model_key, scan_models
from ..engine.sampler_names import SAMPLER_NAMES, SPACINGS


class UnknownModel(LookupError):
    """A model key the server does not offer (HTTP 404)."""


@dataclass(frozen=True)
class ServerCatalog:
    models: tuple[tuple[str, str, str], ...]  # (key, label, family)
    default: str
    skipped: tuple[str, ...] = ()

    @classmethod
    def scan(cls, folders: Sequence[str], default: str = "") -> ServerCatalog:
        entries, skipped = scan_models(tuple(folders), include_defaults=False)
        models = tuple((e.key, e.label, e.family) for e in entries)
        keys = {m[0] for m in models}
        default = default or default_model_key()
        if default not in keys:
            raise ValueError(f"the default model {default!r} is not among this server's models: "
                             f"{', '.join(sorted(keys))}")
        return cls(models, default, tuple(skipped))

    def resolve(self, key: Any) -> str:
        """The key a run uses: ``key`` when the server offers it, the default for an empty one; UnknownModel
        otherwise (never a path: a key from the list is the only way to name a file)."""
        if key in ("", None):
            return self.default
        if not isinstance(key, str) or key not in {m[0] for m in self.models}:
            raise UnknownModel(f"model {str(key)[:200]!r} is not on this server; GET /v1/models lists its models")
        return key

    def label(self, key: str) -> str:
        return next((label for k, label, _ in self.models if k == key), key)

    def to_json(self) -> dict[str, Any]:
        return {"models": [{"key": k, "label": label, "family": family} for k, label, family in self.models],
                "default": self.default, "samplers": [[s.name, s.label] for s in SAMPLER_NAMES],
                "spacings": list(SPACINGS)}
