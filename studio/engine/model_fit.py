"""Settings brought to what a model can do, with a one-line notice for each change (torch-free).

Parameters read from a file (an earlier image, another tool's) may ask a model for what it does
badly or not at all: 512x512 on the 64 px embedded model runs for minutes and gives noise, Clip
skip 2 on a model without CLIP is refused, 100 px is no multiple of a latent's 8. The command line
(``--params-from``) and the window's restore from a dropped image both fit them here, the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AREA_RATIO = 4.0  # within 4x (or 1/4) of its trained area a model still draws; beyond that, its own size


@dataclass(frozen=True)
class ModelTraits:
    label: str  # for the notices
    default_size: tuple[int, int] | None  # (width, height) it was trained at; None when not known yet
    size_multiple: int = 8
    reads_clip_skip: bool | None = None  # None when not known yet


@dataclass(frozen=True)
class Fitted:
    width: int
    height: int
    clip_skip: int
    notices: tuple[str, ...] = ()


def _snap(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def fit_size(width: int, height: int, model: ModelTraits) -> tuple[int, int, str | None]:
    """(width, height, notice or None): the size kept, or scaled to the model's area and snapped."""
    multiple = max(1, model.size_multiple)
    own = model.default_size or (multiple, multiple)
    w, h, why = width, height, None
    if min(width, height) < multiple:
        (w, h), why = own, f"is smaller than {multiple} pixels a side"
    elif model.default_size is not None:
        ratio = (w * h) / (own[0] * own[1])
        if not 1 / MAX_AREA_RATIO <= ratio <= MAX_AREA_RATIO:
            why = f"is far from {model.label}'s {own[0]}x{own[1]}"
            if 1 / MAX_AREA_RATIO <= w / h <= MAX_AREA_RATIO:  # the model's own area, the picture's shape
                scale = math.sqrt(1 / ratio)
                w, h = _snap(w * scale, multiple), _snap(h * scale, multiple)
            else:
                w, h = own
    if w % multiple or h % multiple:
        w, h = _snap(w, multiple), _snap(h, multiple)
        why = why or f"is not a multiple of {multiple} pixels for {model.label}"
    if (w, h) == (width, height):
        return width, height, None
    return w, h, f"Size {width}x{height} {why}: set to {w}x{h}."


def fit_clip_skip(clip_skip: int, model: ModelTraits) -> tuple[int, str | None]:
    """(clip skip, notice or None): 1 for a model that reads no CLIP layers."""
    if clip_skip != 1 and model.reads_clip_skip is False:
        return 1, f"Clip skip {clip_skip} does not apply to {model.label} (it has no CLIP text encoder): set to 1."
    return clip_skip, None


def fit_to_model(width: int, height: int, clip_skip: int, model: ModelTraits) -> Fitted:
    """The size and clip skip ``model`` can use, and a notice for each one changed."""
    width, height, size_notice = fit_size(width, height, model)
    clip_skip, clip_notice = fit_clip_skip(clip_skip, model)
    return Fitted(width, height, clip_skip, tuple(n for n in (size_notice, clip_notice) if n))
