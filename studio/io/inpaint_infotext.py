"""The inpainting choices in the parameters text, with AUTOMATIC1111's keys and values.

AUTOMATIC1111 writes, for an img2img run with a mask, ``Inpaint area: Only masked`` and
``Masked area padding: 32`` when only the masked area was inpainted, and ``Masked content:
fill`` (or ``latent noise``, ``latent nothing``) when the masked content was not the original
(modules/processing.py). Defaults are not written, so a settings line of a masked run that
lacks a key had the default: whole picture, original content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.request import MAX_INPAINT_PADDING, GenerationRequest

if TYPE_CHECKING:
    from .parameters import _Reader

INPAINT_AREA_TEXT = {"whole": "Whole picture", "masked": "Only masked"}
MASKED_CONTENT_TEXT = {"original": "original", "fill": "fill", "latent_noise": "latent noise",
                       "latent_nothing": "latent nothing"}
# Keys only a run with a mask writes: their presence says the line describes one.
MASK_KEYS = ("mask blur", "inpaint area", "masked area padding", "masked content")


def inpaint_pairs(request: GenerationRequest) -> list[tuple[str, object]]:
    """The pairs to write for a request's inpainting choices (none without a mask, none at the defaults)."""
    if request.mask is None:
        return []
    pairs: list[tuple[str, object]] = []
    if request.inpaint_area == "masked":
        pairs += [("Inpaint area", INPAINT_AREA_TEXT["masked"]), ("Masked area padding", request.inpaint_padding)]
    if request.masked_content != "original":
        pairs.append(("Masked content", MASKED_CONTENT_TEXT.get(request.masked_content, request.masked_content)))
    return pairs


def _choice(r: _Reader, key: str, name: str, names: dict[str, str]) -> None:
    found = r.raw(key)
    if found is None:
        return
    label, text = found
    wanted = " ".join(text.strip().lower().replace("_", " ").split())
    for value, written in names.items():
        if wanted == written.lower():
            r.changes[name] = value
            return
    shown = text.strip() if len(text.strip()) <= 40 else text.strip()[:37] + "..."
    r.note(name, f"{label} {shown!r} is not one of {', '.join(names.values())}: kept "
                 f"{names.get(getattr(r.base, name), getattr(r.base, name))}.")


def read_inpaint(r: _Reader) -> None:
    """Inpaint area, padding and masked content into the reader's changes; the defaults for a masked run's
    line that lacks them (it was made with them)."""
    _choice(r, "inpaint area", "inpaint_area", INPAINT_AREA_TEXT)
    r.number(("masked area padding",), "inpaint_padding", 0, MAX_INPAINT_PADDING, whole=True)
    _choice(r, "masked content", "masked_content", MASKED_CONTENT_TEXT)
    if any(key in r.params for key in MASK_KEYS):
        for key, name, default in (("inpaint area", "inpaint_area", "whole"),
                                   ("masked content", "masked_content", "original")):
            if key not in r.params:
                r.changes[name] = default
