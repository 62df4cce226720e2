"""Tiled diffusion and the VAE's tiles in the parameters text.

The studio writes ``Tiled diffusion: 512`` (the tile side in pixels) and ``VAE tile size: 256`` when they are
set, and reads them back. AUTOMATIC1111's Tiled Diffusion extension writes the same key with a dict of its
settings, ``Tiled Diffusion: "{'Method': 'MultiDiffusion', 'Latent tile width': 96, 'Latent tile height': 96,
'Overlap': 48, ...}"``; its tiles are in latent cells (8 pixels for Stable Diffusion): the larger side is read.
Both keys are written only when on, so a settings line without them was made with them off.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..engine.limits import DEFAULT_MAX_SIDE, MAX_SIDE
from ..engine.request import GenerationRequest

if TYPE_CHECKING:
    from .parameters import _Reader

TILE_KEY, VAE_TILE_KEY = "Tiled diffusion", "VAE tile size"
OFF_WHEN_ABSENT = (("tiled diffusion", "tile_size", 0), ("vae tile size", "vae_tile_size", 0))
LATENT_CELL_PIXELS = 8  # Stable Diffusion's VAE: the extension's latent tile sizes are in these
_LATENT_SIDE_RE = re.compile(r"'(?:latent )?tile (?:tile )?(width|height)'\s*:\s*(\d{1,5})", re.IGNORECASE)
_METHOD_RE = re.compile(r"'method'\s*:\s*'([^']{1,40})'", re.IGNORECASE)
MAX_TILE = max(DEFAULT_MAX_SIDE, *MAX_SIDE.values())
MAX_DICT_CHARS = 2000  # the extension's dict is a few hundred characters; longer text is not it


def tile_pairs(request: GenerationRequest) -> list[tuple[str, object]]:
    """The pairs to write (none when both are off)."""
    pairs: list[tuple[str, object]] = []
    if request.tile_size:
        pairs.append((TILE_KEY, request.tile_size))
    if request.vae_tile_size:
        pairs.append((VAE_TILE_KEY, request.vae_tile_size))
    return pairs


def read_tiles(r: _Reader) -> None:
    """Tile sizes into the reader's changes: ours, or the A1111 extension's dict."""
    found = r.params.get("tiled diffusion")
    if found is not None and "{" in found[1]:
        r.raw("tiled diffusion")
        _read_extension_dict(r, *found)
    else:
        r.number(("tiled diffusion",), "tile_size", 0, MAX_TILE, whole=True)
    r.number(("vae tile size",), "vae_tile_size", 0, MAX_TILE, whole=True)


def _read_extension_dict(r: _Reader, label: str, text: str) -> None:
    if len(text) > MAX_DICT_CHARS:
        r.note("tile_size", f"{label} is {len(text):,} characters, too long for the extension's settings: "
                            f"kept {r.base.tile_size}.")
        return
    sides = [int(m.group(2)) for m in _LATENT_SIDE_RE.finditer(text)]
    if not sides:
        r.note("tile_size", f"{label} has no tile width or height: kept {r.base.tile_size}.")
        return
    pixels = min(max(sides) * LATENT_CELL_PIXELS, MAX_TILE)
    r.changes["tile_size"] = pixels
    method = _METHOD_RE.search(text)
    how = f" ({method.group(1)}; the studio runs MultiDiffusion)" if method else ""
    r.note("tile_size", f"{label}: latent tiles of {max(sides)} read as {pixels} px tiles{how}.")
