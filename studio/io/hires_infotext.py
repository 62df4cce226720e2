"""The hires fix in the parameters text, with AUTOMATIC1111's keys.

AUTOMATIC1111 writes, for a text-to-image run with hires fix (modules/processing.py):
``Denoising strength: 0.7`` (the second pass's), ``Hires upscale: 2`` (or ``Hires resize: 1024x1536``
when a size was asked for instead of a factor), ``Hires steps: 10`` (only when not 0) and
``Hires upscaler: Latent``. A settings line without them was made with hires fix off. In a line
without the hires keys, ``Denoising strength`` is img2img's strength (parameters.py reads it then).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..engine.hires_settings import MAX_HIRES_SCALE, MAX_UPSCALER_NAME
from ..engine.request import GenerationRequest

if TYPE_CHECKING:
    from .parameters import _Reader

HIRES_KEYS = ("hires upscale", "hires resize")  # either one says the run had hires fix on
_RESIZE_RE = re.compile(r"(\d{1,6})\s*x\s*(\d{1,6})")


def hires_pairs(request: GenerationRequest) -> list[tuple[str, object]]:
    """The pairs to write for the request's hires fix (none when it is off)."""
    if not request.hires:
        return []
    pairs: list[tuple[str, object]] = [("Denoising strength", f"{request.hires_denoise:g}"),
                                       ("Hires upscale", f"{request.hires_scale:g}")]
    if request.hires_steps:
        pairs.append(("Hires steps", request.hires_steps))
    pairs.append(("Hires upscaler", request.hires_upscaler))
    return pairs


def read_hires(r: _Reader, settings_line: bool) -> bool:
    """Hires fix settings into the reader's changes; True when the line had them (its "Denoising strength"
    is then the second pass's). A settings line without them switches hires fix off."""
    if not any(key in r.params for key in HIRES_KEYS):
        if settings_line:
            r.changes["hires_scale"] = 0.0
        return False
    r.number(("hires upscale",), "hires_scale", 1, MAX_HIRES_SCALE)
    if "hires upscale" not in r.params:
        _read_resize(r)
    r.number(("hires steps",), "hires_steps", 0, 1000, whole=True)
    if "hires steps" not in r.params:
        r.changes["hires_steps"] = 0  # written only when not 0
    found = r.raw("hires upscaler")
    if found is not None:
        name = found[1].strip()
        if name and len(name) <= MAX_UPSCALER_NAME:
            r.changes["hires_upscaler"] = name
        else:
            r.note("hires_upscaler", f"{found[0]} is empty or too long to be an upscaler's name: "
                                     f"kept {r.base.hires_upscaler}.")
    r.number(("denoising strength",), "hires_denoise", 0, 1)
    return True


def _read_resize(r: _Reader) -> None:
    """``Hires resize: WxH`` as a factor of the first pass's size (the studio scales by a factor; AUTOMATIC1111
    also crops when the two aspect ratios differ): the width's factor, or the height's when the width is 0."""
    label, text = r.raw("hires resize")
    m = _RESIZE_RE.fullmatch(text.strip()) if len(text) <= 64 else None
    width = r.changes.get("width", r.base.width)
    height = r.changes.get("height", r.base.height)
    target_w, target_h = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not (target_w or target_h) or not width or not height:
        r.note("hires_scale", f"{label} {text.strip()[:40]!r} is not WIDTHxHEIGHT: kept hires upscale "
                              f"{r.base.hires_scale:g}.")
        return
    scale = target_w / width if target_w else target_h / height
    bounded = round(min(max(scale, 1.0), MAX_HIRES_SCALE), 4)
    r.changes["hires_scale"] = bounded
    r.note("hires_scale", f"{label} {text.strip()} is read as Hires upscale {bounded:g} (the studio scales by a "
                          f"factor of {width}x{height}).")
