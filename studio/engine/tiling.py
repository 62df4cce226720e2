"""Overlapping tiles over a 2-D grid and the feathered weights that blend them back.

Shared by tiled VAE encoding/decoding (models/vae_tiles.py) and tiled diffusion (tiled_diffusion.py).
A grid side of ``length`` cells is covered by tiles of at most ``tile`` cells that overlap their neighbours
by at least ``overlap`` cells; tiles are spread evenly, so the last one ends exactly at the edge. A tile's
weight rises (cubically) from near zero across the part it shares with a neighbour and stays 1 elsewhere (also at
the picture's own edges), so where tiles overlap the result crossfades smoothly from one to the other, and
a single tile covering everything has weight exactly 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tile:
    top: int
    left: int
    height: int
    width: int

    @property
    def rows(self) -> slice:
        return slice(self.top, self.top + self.height)

    @property
    def cols(self) -> slice:
        return slice(self.left, self.left + self.width)


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of tiles covering 0..length: each at most ``tile`` long, neighbours sharing >= ``overlap``."""
    if length <= tile:
        return [(0, length)]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be from 0 to {tile - 1}, got {overlap}")
    count = math.ceil((length - overlap) / (tile - overlap))
    # Evenly spread starts from 0 to length - tile: every gap is at most tile - overlap, so overlaps only grow.
    return [(round(i * (length - tile) / (count - 1)), round(i * (length - tile) / (count - 1)) + tile)
            for i in range(count)]


def grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering a ``height`` x ``width`` grid."""
    return [Tile(top, left, bottom - top, right - left)
            for top, bottom in spans(height, tile, overlap) for left, right in spans(width, tile, overlap)]


def _ramp(size: int, before: int, after: int) -> torch.Tensor:
    """1-D weights: rising over the first ``before`` cells, falling over the last ``after``, 1 between.

    The rise is cubic, not linear: the cells nearest a tile's border, where its zero padding falsifies the
    network's output most, get almost no weight (1/64 of the middle's at a quarter of the way in), while the
    crossfade across an overlap stays smooth. With a 5 x 5 blur as the "network", 16-cell tiles sharing 6
    cells left a seam step 1.15x the picture's own with the cube, 1.75x with a linear rise."""
    w = torch.ones(size, dtype=torch.float64)
    i = torch.arange(size, dtype=torch.float64)
    if before > 0:
        w = torch.minimum(w, ((i + 0.5) / before).clamp(max=1) ** 3)
    if after > 0:
        w = torch.minimum(w, ((size - i - 0.5) / after).clamp(max=1) ** 3)
    return w


def feather(tile: Tile, tiles: list[Tile], scale: int = 1) -> torch.Tensor:
    """[height * scale, width * scale] float64 weights of ``tile`` among ``tiles``.

    The ramp on a side is as long as the overlap with the neighbouring tile on that side (none at the
    picture's edge); ``scale`` gives the weights for the same tile in pixels when the tiles are in latent
    cells (a VAE decodes a latent tile to scale x scale as many pixels).
    """
    def shared(before: bool, axis: int) -> int:
        start, size = (tile.top, tile.height) if axis == 0 else (tile.left, tile.width)
        best = 0
        for other in tiles:
            o_start, o_size = (other.top, other.height) if axis == 0 else (other.left, other.width)
            if other == tile or o_start == start:
                continue
            if before and o_start < start < o_start + o_size:
                best = max(best, o_start + o_size - start)
            if not before and start < o_start < start + size:
                best = max(best, start + size - o_start)
        return best

    rows = _ramp(tile.height * scale, shared(True, 0) * scale, shared(False, 0) * scale)
    cols = _ramp(tile.width * scale, shared(True, 1) * scale, shared(False, 1) * scale)
    return rows[:, None] * cols[None, :]
