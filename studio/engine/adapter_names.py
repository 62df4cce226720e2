"""How a LoRA, embedding or ControlNet name in a prompt or a request finds its file, torch-free.

AUTOMATIC1111's rule: a file's stem, case-insensitive. A name that matches none gets one
line naming the closest names, so a typo is one glance to fix. The engine says it when a
run starts (models/sd/adapter_files.py); the panel says the same under the prompt box
before Generate, from the names the engine listed.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

KIND_LABELS = {"lora": "LoRA", "embedding": "embedding", "controlnet": "ControlNet", "upscaler": "upscaler"}
# The folder a tool keeps each kind in (A1111's names), for the message when none were found at all.
HOME_FOLDERS = {"lora": "models/Lora", "embedding": "embeddings", "controlnet": "models/ControlNet",
                "upscaler": "models/ESRGAN"}


def match_name(name: str, names: Sequence[str]) -> str | None:
    """The listed name ``name`` means (case-insensitive; the first listed wins), or None."""
    wanted = name.strip().lower()
    return next((n for n in names if n.lower() == wanted), None)


def not_found_message(kind: str, name: str, names: Sequence[str]) -> str:
    """"no LoRA named 'x' (closest: ...)": what to say about a name that matches none of ``names``."""
    text = name.strip()
    by_lower: dict[str, str] = {}
    for n in names:
        by_lower.setdefault(n.lower(), n)
    label = KIND_LABELS[kind]
    close = difflib.get_close_matches(text.lower(), list(by_lower), n=3, cutoff=0.5)
    if close:
        hint = "closest: " + ", ".join(by_lower[c] for c in close)
    elif names:
        hint = f"{len(names)} {label}s found, e.g. " + ", ".join(names[:3])
    else:
        hint = f"no {label} files were found; put them in {HOME_FOLDERS[kind]} or add its folder in Settings"
    return f"no {label} named {text!r} ({hint})"
