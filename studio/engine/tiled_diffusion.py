"""Tiled diffusion: a denoiser that runs the network on overlapping latent tiles (MultiDiffusion).

Bar-Tal et al. (2023) fuse several diffusion paths over one canvas by denoising each crop and, at every
step, taking the weighted average of the crops' predictions where they overlap (their eq. 5 with a
least-squares fusion). Here each tile's x0 prediction is weighted by a feathered window (tiling.py), so the
predictions crossfade across an overlap instead of meeting at a hard edge. The result is an ordinary
``denoise(x, sigma, cond) -> x0``: every sampler, guidance and inpainting work on the whole latent unchanged,
and only the network sees one tile at a time, so its working memory is a tile's.

Conditioning that covers the latent (an inpainting UNet's ``concat`` of mask and masked latent) is cut to
the tile. A model with size conditioning (SDXL's ``time_ids``) says how a tile's cond differs through its
``tile_cond(cond, box)`` method.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .denoisers import Cond, Denoiser
from .tiling import Tile, feather, grid

# Neighbouring tiles share a quarter of a tile (A1111's Tiled Diffusion defaults to a third to a half;
# a quarter keeps the extra network work at about 1.8x for big pictures, and the feathered blend hides it).
OVERLAP_FRACTION = 0.25

# (cond, (top, left, height, width) in latent cells, (latent height, latent width)) -> the tile's cond
TileCond = Callable[[dict[str, torch.Tensor], tuple[int, int, int, int], tuple[int, int]], dict[str, torch.Tensor]]


def tiled_denoiser(denoiser: Denoiser, tile: int, overlap: int | None = None,
                   tile_cond: TileCond | None = None) -> Denoiser:
    """``denoiser`` run on tiles of ``tile`` latent cells sharing ``overlap`` cells (a quarter by default)."""
    if tile < 1:
        raise ValueError(f"tile must be at least 1 latent cell, got {tile}")
    overlap = max(0, int(tile * OVERLAP_FRACTION)) if overlap is None else overlap
    layouts: dict[tuple[int, int], list[tuple[Tile, torch.Tensor]]] = {}

    def layout(h: int, w: int, device: torch.device, dtype: torch.dtype) -> list[tuple[Tile, torch.Tensor]]:
        key = (h, w)
        if key not in layouts:
            tiles = grid(h, w, tile, min(overlap, tile - 1))
            layouts[key] = [(t, feather(t, tiles).to(device, dtype)) for t in tiles]
        return layouts[key]

    def denoise(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        h, w = x.shape[-2:]
        out = torch.zeros_like(x)
        weights = x.new_zeros((h, w))
        for t, wt in layout(h, w, x.device, x.dtype):
            x0 = denoiser(x[..., t.rows, t.cols], sigma, _cut(cond, t, (h, w), tile_cond))
            out[..., t.rows, t.cols] += x0 * wt
            weights[t.rows, t.cols] += wt
        return out / weights

    return denoise


def _cut(cond: Cond, t: Tile, size: tuple[int, int], tile_cond: TileCond | None) -> Cond:
    """The tile's conditioning: latent-sized maps cut to the tile, then the model's own changes."""
    if cond is None:
        return None
    cut = {k: v[..., t.rows, t.cols] if v.ndim == 4 and tuple(v.shape[-2:]) == size else v for k, v in cond.items()}
    if tile_cond is not None:
        cut = tile_cond(cut, (t.top, t.left, t.height, t.width), size)
    return cut


def model_tiled_denoiser(model, denoiser: Denoiser, tile_pixels: int) -> Denoiser:
    """``denoiser`` of ``model`` in tiles of ``tile_pixels`` image pixels (the request's ``tile_size``)."""
    return tiled_denoiser(denoiser, max(1, tile_pixels // model.info.latent_scale),
                          tile_cond=getattr(model, "tile_cond", None))


def use_vae_tiles(model, request) -> None:
    """Give ``model``'s VAE codec (models with one) the request's VAE tile side: ``vae_tile_size``, else the
    diffusion's ``tile_size``, else 0 (whole images, tiles only when large)."""
    codec = getattr(model, "codec", None)
    if codec is not None:
        codec.tile_size = request.vae_tile_size or request.tile_size
