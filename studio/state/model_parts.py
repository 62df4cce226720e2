"""The text encoder and VAE files a user picked for a split SD 3.x / Flux.1 / Z-Image model, kept per model key.

Torch-free: the settings keep them, the panel's "Text encoders / VAE" dialog edits them, and the engine thread
gets them with the model key (engine/models/flow/load.py finds whatever is not given beside the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_ENCODERS = 4  # clip_l, clip_g, t5xxl: three at most, and one to spare


@dataclass(frozen=True)
class ModelParts:
    text_encoders: tuple[str, ...] = ()  # files; empty: found beside the model
    vae: str = ""  # a file; empty: found beside the model

    @property
    def empty(self) -> bool:
        return not self.text_encoders and not self.vae

    def to_json(self) -> dict[str, Any]:
        return {"text_encoders": list(self.text_encoders), "vae": self.vae}


def _path_text(value: object) -> bool:
    if not isinstance(value, str) or not value or "\0" in value or len(value) > 4096:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parts_from_json(data: object) -> dict[str, ModelParts]:
    """The saved choices; anything malformed (another version's file, a hand edit) is left out, never fatal."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for key, value in data.items():
        if not _path_text(key) or not isinstance(value, dict):
            continue
        encoders = value.get("text_encoders")
        encoders = tuple(e for e in encoders if _path_text(e))[:MAX_ENCODERS] if isinstance(encoders, list) else ()
        vae = value.get("vae") if _path_text(value.get("vae")) else ""
        parts = ModelParts(encoders, vae)
        if not parts.empty:
            out[key] = parts
    return out
