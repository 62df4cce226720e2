"""Tiled VAE encoding and decoding whose memory depends on the tile, not the picture.

A VAE run on a tile alone differs from the whole picture's run in two ways:

- the convolutions near the tile's border see zeros instead of the neighbours: tiles overlap, and their
  feathered weights (tiling.py) fade each tile out towards the borders it shares, so a pixel comes mostly
  from the tile where it lies deepest;
- every GroupNorm normalises by the mean and variance of what it sees, so a dark tile and a bright tile
  are normalised differently and their colours drift apart (a visible step at the seams). As AUTOMATIC1111's
  Tiled VAE extension does in its fast mode, the statistics are first recorded on the whole picture shrunk
  to one tile's size, and every tile is then normalised with those, in the same call order.

What remains is the mid-block attention, which attends within a tile instead of across the picture, and the
shrunken picture's statistics being an estimate. docs/tiles.md has the measured differences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..tiling import feather, grid

# Neighbouring tiles share this fraction of a tile: the decoder's receptive field is wide, and
# a quarter of a 64-latent tile (128 px) keeps border effects inside the faded part.
OVERLAP_FRACTION = 0.25


@contextmanager
def group_norm_stats(module: torch.nn.Module, stats: list[tuple[torch.Tensor, torch.Tensor]],
                     record: bool) -> Iterator[None]:
    """Inside, every GroupNorm of ``module`` records its (mean, var) per group into ``stats`` (``record``),
    or normalises with the recorded ones in call order instead of its input's own."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.GroupNorm)]
    calls = iter(range(len(stats))) if not record else None

    def forward(norm: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        grouped = x.float().reshape(b, norm.num_groups, -1)
        if record:
            mean, var = grouped.mean(-1), grouped.var(-1, unbiased=False)
            stats.append((mean, var))
        else:
            index = next(calls, None)
            if index is None:
                raise RuntimeError("tiled VAE: a tile ran more GroupNorm calls than the statistics pass")
            mean, var = stats[index]
        out = (grouped - mean[..., None]) * torch.rsqrt(var[..., None] + norm.eps)
        out = out.reshape(x.shape)
        if norm.affine:
            shape = (1, c) + (1,) * (x.ndim - 2)
            out = out * norm.weight.float().reshape(shape) + norm.bias.float().reshape(shape)
        return out.to(x.dtype)

    for norm in norms:
        norm.forward = lambda x, norm=norm: forward(norm, x)  # an instance attribute shadows the method
    try:
        yield
    finally:
        for norm in norms:
            del norm.forward


def tiled_decode(decode: Callable[[torch.Tensor], torch.Tensor], module: torch.nn.Module, z: torch.Tensor,
                 tile: int, scale: int) -> torch.Tensor:
    """Decode latent ``z`` [B, C, h, w] in tiles of ``tile`` latent cells; ``decode`` maps a latent to pixels
    ``scale`` times larger, ``module`` holds its GroupNorms. Returns float32 [B, 3, h * scale, w * scale]."""
    h, w = z.shape[-2:]
    tiles = grid(h, w, tile, max(1, int(tile * OVERLAP_FRACTION)))
    if len(tiles) == 1:
        return decode(z).float()
    stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    with group_norm_stats(module, stats, record=True):
        decode(_shrunk(z, tile))
    out = weights = None
    for t in tiles:
        with group_norm_stats(module, stats, record=False):
            pixels = decode(z[..., t.rows, t.cols]).float()
        if out is None:
            out = pixels.new_zeros(pixels.shape[:2] + (h * scale, w * scale))
            weights = pixels.new_zeros((h * scale, w * scale))
        wt = feather(t, tiles, scale).to(pixels.device, torch.float32)
        rows, cols = slice(t.top * scale, (t.top + t.height) * scale), slice(t.left * scale, (t.left + t.width) * scale)
        out[..., rows, cols] += pixels * wt
        weights[rows, cols] += wt
        del pixels
    return out / weights


def tiled_encode(encode: Callable[[torch.Tensor], torch.Tensor], module: torch.nn.Module, image: torch.Tensor,
                 tile: int, scale: int) -> torch.Tensor:
    """Encode ``image`` [B, 3, H, W] (H, W multiples of ``scale``) in tiles of ``tile`` latent cells (``tile *
    scale`` pixels); ``encode`` maps pixels to a latent ``scale`` times smaller. Returns float32 [B, C, H/s, W/s]."""
    h, w = image.shape[-2] // scale, image.shape[-1] // scale
    tiles = grid(h, w, tile, max(1, int(tile * OVERLAP_FRACTION)))
    if len(tiles) == 1:
        return encode(image).float()
    stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    with group_norm_stats(module, stats, record=True):
        encode(_shrunk(image, tile * scale, multiple=scale))
    out = weights = None
    for t in tiles:
        crop = image[..., t.top * scale:(t.top + t.height) * scale, t.left * scale:(t.left + t.width) * scale]
        with group_norm_stats(module, stats, record=False):
            latent = encode(crop).float()
        if out is None:
            out = latent.new_zeros(latent.shape[:2] + (h, w))
            weights = latent.new_zeros((h, w))
        wt = feather(t, tiles).to(latent.device, torch.float32)
        out[..., t.rows, t.cols] += latent * wt
        weights[t.rows, t.cols] += wt
    return out / weights


def _shrunk(x: torch.Tensor, side: int, multiple: int = 1) -> torch.Tensor:
    """``x`` area-averaged so its longer side is at most ``side`` (sizes kept multiples of ``multiple``)."""
    h, w = x.shape[-2:]
    factor = min(1.0, side / max(h, w))
    size = tuple(max(multiple, round(n * factor / multiple) * multiple) for n in (h, w))
    return x if size == (h, w) else F.interpolate(x.float(), size=size, mode="area").to(x.dtype)
