"""What the LoRA and embedding pickers put into a prompt box, and where: pure string work, tested without a window.

A LoRA goes in as AUTOMATIC1111 writes it, ``<lora:NAME:1>`` (the weight is then edited in
the text, or with Ctrl+Up / Ctrl+Down); an embedding as its name. The snippet replaces the
selection or goes at the cursor; a cursor the user never placed (at the start of a prompt
that has text) means the end, as pickers in other studios append. Commas keep it apart
from the words around it.
"""

from __future__ import annotations


def lora_tag(name: str, weight: float = 1.0) -> str:
    return f"<lora:{name}:{weight:g}>"


def insert_snippet(text: str, start: int, end: int, snippet: str) -> tuple[str, int]:
    """(new text, cursor after the snippet) with ``snippet`` in place of ``text[start:end]``."""
    start, end = sorted((max(0, min(start, len(text))), max(0, min(end, len(text)))))
    if start == end == 0 and text.strip():
        start = end = len(text.rstrip())  # a cursor never placed: append
    before, after = text[:start], text[end:]
    lead = ", " if before.strip() and not before.rstrip().endswith((",", "(", "[", "|", ":")) else ""
    if lead and before.endswith(" "):
        before = before.rstrip(" ")
    trail = ", " if after.strip() and not after.lstrip().startswith((",", ")", "]", "|", ":")) else ""
    if trail and after.startswith(" "):
        after = after.lstrip(" ")
    placed = before + lead + snippet
    return placed + trail + after, len(placed)
