"""Ctrl+Up / Ctrl+Down in a prompt box: raise or lower the emphasis of the selected words.

AUTOMATIC1111 users do this without thinking: select words (or put the cursor in
one), press Ctrl+Up, and ``word`` becomes ``(word:1.1)``; again, ``(word:1.2)``;
Ctrl+Down back to 1.0 removes the brackets. In a LoRA tag, ``<lora:name:0.8>``,
the keys change the tag's weight instead, as in AUTOMATIC1111. Pure string maths, so
it is tested without a window.
"""

from __future__ import annotations

import re

STEP = 0.1
_WEIGHTED = re.compile(r"\(([^()]*?):\s*([+-]?\d*\.?\d+)\s*\)")
_WORD = re.compile(r"[\w'-]+")
_LORA_TAG = re.compile(r"<(?:lora|lyco):[^<>]*>", re.IGNORECASE)


def _format(weight: float) -> str:
    return f"{weight:.2f}".rstrip("0").rstrip(".")


def adjust_emphasis(text: str, start: int, end: int, up: bool) -> tuple[str, int, int]:
    """(new text, new selection start, new selection end) after one Ctrl+Up (``up``) or Ctrl+Down.

    The selection afterwards covers the same words, so the key can be pressed again.
    With nothing selected, the weighted group or the word under the cursor is taken;
    elsewhere (a space, an empty box) nothing changes.
    """
    start, end = sorted((max(0, start), min(len(text), end)))
    delta = STEP if up else -STEP
    tag = next((m for m in _LORA_TAG.finditer(text) if m.start() <= start and end <= m.end()), None)
    if tag is not None:
        return _adjust_lora_weight(text, tag, delta)
    group = _group_at(text, start, end)
    if group is not None:
        open_at, inner_start, inner_end, close_end, weight = group
        weight = round(weight + delta, 2)
        inner = text[inner_start:inner_end]
        if abs(weight - 1.0) < 1e-9:  # back to neutral: the brackets go
            new = text[:open_at] + inner + text[close_end:]
            return new, open_at, open_at + len(inner)
        new = text[:open_at] + f"({inner}:{_format(weight)})" + text[close_end:]
        return new, open_at + 1, open_at + 1 + len(inner)
    if start == end:
        word = next((m for m in _WORD.finditer(text) if m.start() <= start <= m.end()), None)
        if word is None:
            return text, start, end
        start, end = word.span()
    selected = text[start:end]
    stripped = selected.strip()
    if not stripped:
        return text, start, end
    # keep the spaces around a sloppy selection outside the brackets
    start += len(selected) - len(selected.lstrip())
    end = start + len(stripped)
    new = text[:start] + f"({stripped}:{_format(1.0 + delta)})" + text[end:]
    return new, start + 1, end + 1


def _group_at(text: str, start: int, end: int) -> tuple[int, int, int, int, float] | None:
    """The ``(words:weight)`` group whose words (or whole) the selection or cursor is in."""
    for m in _WEIGHTED.finditer(text):
        inner_start, inner_end = m.span(1)
        inside_words = inner_start <= start and end <= inner_end
        whole = start == m.start() and end == m.end()
        if inside_words or whole or (start == end and m.start() <= start <= m.end()):
            if start != end and not whole and (start, end) != (inner_start, inner_end):
                return None  # part of a group's words: wrap just those (nested emphasis)
            return m.start(), inner_start, inner_end, m.end(), float(m.group(2))
    return None


def _adjust_lora_weight(text: str, tag: re.Match, delta: float) -> tuple[str, int, int]:
    """The tag's weight (its last number: the UNet's in ``<lora:name:te:unet>``) moved by ``delta``;
    the tag stays selected. A weight that is not a number is left for the engine to name."""
    parts = tag.group(0)[1:-1].split(":")
    if len(parts) < 3:
        parts.append("1")  # <lora:name> weighs 1
    try:
        weight = float(parts[-1])
    except ValueError:
        return text, tag.start(), tag.end()
    parts[-1] = _format(round(weight + delta, 2))
    new_tag = "<" + ":".join(parts) + ">"
    return text[:tag.start()] + new_tag + text[tag.end():], tag.start(), tag.start() + len(new_tag)
