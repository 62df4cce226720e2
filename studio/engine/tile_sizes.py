"""The request's tile sizes, checked: torch-free like request.py, which calls it.

``tile_size`` (pixels): tiled diffusion, the network runs on overlapping tiles of this side (tiled_diffusion.py),
and the VAE encodes and decodes in tiles of it too; 0 is off. ``vae_tile_size`` (pixels): the VAE's tiles alone;
0 follows ``tile_size``, or tiles automatically above 1536 x 1536 pixels (models/vae_codec.py).
"""

from __future__ import annotations

# Fewer than 4 latent cells a side leaves a UNet (three halvings) nothing to work on; 4 cells is 32 px for SD.
MIN_TILE_CELLS = 4


def check_tile_sizes(tile_size: object, vae_tile_size: object, size_multiple: int, max_side: int,
                     has_controlnets: bool) -> tuple[str, str] | None:
    """(field, message) for the first tile size that cannot work, or None."""
    smallest = MIN_TILE_CELLS * size_multiple
    for name, value in (("tile_size", tile_size), ("vae_tile_size", vae_tile_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > max_side \
                or (value and (value < smallest or value % size_multiple)):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            return name, (f"must be 0 (off) or a multiple of {size_multiple} pixels from {smallest} to {max_side}, "
                          f"got {shown}")
    if tile_size and has_controlnets:
        return "tile_size", ("tiled diffusion does not work with ControlNet units yet; set the tile size to 0 or "
                             "remove the ControlNet units")
    return None
