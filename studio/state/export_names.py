"""File names the export dialogs propose: the prompt's first words and the seed, e.g. red-heart-1234.png."""

from __future__ import annotations

import re

MAX_WORDS = 6
MAX_STEM = 60


def export_stem(prompt: str, seed: int | None) -> str:
    """A file name stem from ``prompt`` and ``seed``: lower case words joined by hyphens, safe on every system."""
    words = re.findall(r"[^\W_]+", prompt.lower())[:MAX_WORDS]  # letters and digits of any script
    stem = "-".join(words)[:MAX_STEM].strip("-") or "image"
    return stem if seed is None else f"{stem}-{seed}"
