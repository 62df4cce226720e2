"""Running an image network tile by tile, so its memory depends on the tile and not on the image.

The image is reflect-padded by a quarter of the overlap and cut into tiles that overlap by at least
``overlap`` pixels (placed by engine/tiling.py, as the VAE's tiles are). Each tile's output is blended
in with a weight that is 0 on the outer quarter of the overlap (where the network saw the tile's zero
padding instead of its neighbours), rises linearly across the middle half and is 1 beyond. Where two
tiles overlap the weights add up to one, so seams fade across the overlap instead of stepping; a flat
image stays flat. (The VAE's feathering ramps from the very edge: a decoder's edge effects are mild,
a random ESRGAN's reached 0.2 of the range here.) The untiled run pads the same way, so tiled and
untiled outputs agree wherever the network's reach is inside the kept part.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..tiling import spans

MIN_TILE = 32  # below this the overlap is most of the tile and the work multiplies


def fitted_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """As few tiles as ``tile`` allows, each shrunk so neighbours overlap by about ``overlap`` and no more.

    Tiles of the full size spread evenly would overlap by whatever is left over: 3 tiles of 256 px over
    520 px overlap by 124 px, twice the pixels of the image; 3 tiles of 195 px do the same with 32.
    """
    count = len(spans(length, tile, overlap))
    if count == 1:
        return [(0, length)]
    return spans(length, min(tile, -(-(length + (count - 1) * overlap) // count)), overlap)


def edge_weights(length: int, scale: int, inner_start: bool, inner_end: bool, overlap: int) -> torch.Tensor:
    """The blending weight of one tile along one axis, per output pixel (``length`` input pixels).

    An inner edge (one a neighbouring tile shares) weighs 0 over its first quarter-overlap, then rises
    linearly to 1 at three quarters; an edge of the image weighs 1 throughout.
    """
    distance = (torch.arange(length * scale, dtype=torch.float32) + 0.5) / scale
    weights = torch.ones(length * scale)
    if overlap <= 0:
        return weights
    skip, ramp = overlap / 4, overlap / 2
    if inner_start:
        weights = weights * ((distance - skip) / ramp).clamp(0, 1)
    if inner_end:
        weights = weights * ((length - distance - skip) / ramp).clamp(0, 1)
    return weights


def run_tiled(image: torch.Tensor, network: Callable[[torch.Tensor], torch.Tensor], scale: int, tile: int,
              overlap: int, on_tile: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``network`` (float [1, C, h, w] -> [1, C, h*scale, w*scale]) over ``image`` [1, C, H, W] in tiles of at
    most ``tile`` pixels a side (0: the whole image at once); the float32 result lies on the CPU.

    ``on_tile(done, total)`` is called after each tile (it may raise to stop the run).
    """
    _, channels, height, width = image.shape
    pad = overlap // 4
    if pad:
        mode = "reflect" if pad < min(height, width) else "replicate"
        image = F.pad(image, (pad, pad, pad, pad), mode=mode)
    padded_h, padded_w = image.shape[-2:]
    size = tile if tile > 0 else max(padded_h, padded_w)
    ys, xs = fitted_spans(padded_h, size, overlap), fitted_spans(padded_w, size, overlap)
    total = len(ys) * len(xs)
    out = torch.zeros(channels, padded_h * scale, padded_w * scale)
    weight_sum = torch.zeros(padded_h * scale, padded_w * scale)
    done = 0
    for y, y_end in ys:
        th = y_end - y
        wy = edge_weights(th, scale, y > 0, y + th < padded_h, overlap)
        for x, x_end in xs:
            tw = x_end - x
            result = network(image[:, :, y:y + th, x:x + tw])
            if tuple(result.shape[-2:]) != (th * scale, tw * scale):
                raise ValueError(f"the upscaler made a {result.shape[-1]}x{result.shape[-2]} tile from "
                                 f"{tw}x{th}, not {scale}x larger")
            wx = edge_weights(tw, scale, x > 0, x + tw < padded_w, overlap)
            weight = wy[:, None] * wx[None, :]
            ys_out, xs_out = slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale)
            out[:, ys_out, xs_out] += result[0].float().cpu() * weight
            weight_sum[ys_out, xs_out] += weight
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    out /= weight_sum.clamp_min(1e-8)
    crop = pad * scale
    return out[None, :, crop:crop + height * scale, crop:crop + width * scale]
