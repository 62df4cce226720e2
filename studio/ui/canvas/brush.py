"""Brush raster maths: the coverage of one stroke segment, in numpy only.

A stroke is painted as a chain of capsules (a segment swept by a disc) rather than
as stamped dabs: the coverage of a capsule is the exact limit of infinitely dense
dabs, so fast mouse moves never leave beads, and one numpy pass per mouse move is
cheaper than dozens of dabs.
"""

from __future__ import annotations

import numpy as np

# A hard brush still gets a one-pixel anti-aliased rim, so hard strokes are not jagged.
_MIN_FALLOFF_PX = 1.0


def segment_coverage(
    x0: float, y0: float, x1: float, y1: float, diameter: float, hardness: float, width: int, height: int,
    end_diameter: float | None = None,
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Coverage in [0, 1] of the capsule from (x0, y0) to (x1, y1) in image pixel coordinates.

    Coordinates are continuous: pixel (i, j) spans [i, i+1) x [j, j+1) and is sampled at its
    centre. ``hardness`` 1 gives a solid disc with an anti-aliased rim; lower values
    feather the outer ``(1 - hardness)`` of the radius with a smoothstep falloff.
    ``end_diameter`` (pen pressure) tapers the capsule linearly from ``diameter`` at
    (x0, y0) to it at (x1, y1); the radius is taken at each pixel's projection on the
    segment, which is exact for the ends and a close fit for the short segments of a stroke.
    Returns ``((left, top, right, bottom), coverage)`` clipped to the image (right/bottom
    exclusive), or None when the capsule misses the image.
    """
    radius = max(diameter, 1.0) / 2.0
    radius1 = radius if end_diameter is None else max(end_diameter, 1.0) / 2.0
    hardness = min(max(hardness, 0.0), 1.0)
    # Coverage reaches 0 half a pixel beyond the radius so a hard rim is centred on it.
    reach = max(radius, radius1) + 0.5
    left = max(int(np.floor(min(x0, x1) - reach)), 0)
    top = max(int(np.floor(min(y0, y1) - reach)), 0)
    right = min(int(np.ceil(max(x0, x1) + reach)) + 1, width)
    bottom = min(int(np.ceil(max(y0, y1) + reach)) + 1, height)
    if left >= right or top >= bottom:
        return None

    px = (np.arange(left, right, dtype=np.float32) + 0.5)[None, :]
    py = (np.arange(top, bottom, dtype=np.float32) + 0.5)[:, None]
    dx, dy = x1 - x0, y1 - y0
    length_sq = dx * dx + dy * dy
    if length_sq < 1e-12:
        dist = np.hypot(px - x0, py - y0)
        r = np.float32(max(radius, radius1))
    else:
        # Project every pixel centre on the segment, clamped to its ends.
        t = ((px - x0) * dx + (py - y0) * dy) / length_sq
        np.clip(t, 0.0, 1.0, out=t)
        dist = np.hypot(px - (x0 + t * dx), py - (y0 + t * dy))
        r = radius + t * (radius1 - radius) if radius1 != radius else np.float32(radius)

    falloff = np.maximum(r * (1.0 - hardness), _MIN_FALLOFF_PX)
    cov = (r + 0.5 - dist) / falloff
    np.clip(cov, 0.0, 1.0, out=cov)
    if hardness < 1.0:
        # Smoothstep: a feather without the visible ring a linear ramp leaves.
        cov = cov * cov * (3.0 - 2.0 * cov)
    return (left, top, right, bottom), cov.astype(np.float32, copy=False)
