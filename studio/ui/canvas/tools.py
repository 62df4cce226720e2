"""Mask painting tools and the limits of their settings."""

from __future__ import annotations

from enum import Enum


class Tool(str, Enum):
    """What a left-button drag on the canvas does to the mask."""

    BRUSH = "brush"
    ERASER = "eraser"


MIN_BRUSH_PX = 1
MAX_BRUSH_PX = 1024
DEFAULT_BRUSH_FRACTION = 1 / 8  # of the image's shorter side: 8 px on a 64 px image, 64 px on 512 px
DEFAULT_HARDNESS = 0.8


def clamp_brush_size(px: float) -> int:
    return int(min(max(round(px), MIN_BRUSH_PX), MAX_BRUSH_PX))


def default_brush_size(width: int, height: int) -> int:
    """The brush a new image starts with, until the user picks a size: a fixed share of the image."""
    return clamp_brush_size(min(width, height) * DEFAULT_BRUSH_FRACTION)


def step_brush_size(px: int, grow: bool) -> int:
    """The next size for the [ and ] keys.

    Steps are proportional (about 15 %) so that a few presses go from a fine 3 px
    brush to a 400 px one, as in Krita and Photoshop; at least 1 px so small sizes move.
    """
    step = max(1, round(px * 0.15))
    return clamp_brush_size(px + step if grow else px - step)
