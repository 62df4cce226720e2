"""An upscale on the server, as it travels: ``POST /v1/upscales`` with one image, and the events that answer it.

The body is ``{"image": base64 PNG, "upscaler": name, "scale": factor, "tile": input pixels a side}``. The
upscaler is ``lanczos`` or the name of an upscaler file in the server's own model folders (as ``GET
/v1/adapters`` lists them): never a path. The answer is NDJSON like a run's: ``started``, a ``progress`` event
after each tile (``done``, ``total``), then ``result`` (``image`` a PNG, ``label``, ``scale``, ``elapsed``),
``cancelled`` or ``error``. Closing the stream stops the upscale after its current tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.request import RequestError
from ..engine.upscalers import DEFAULT_TILE  # torch-free to import, as this module must be
from .security import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE
from .wire import image_from_png_b64, json_number, png_b64

FIELDS = ("image", "upscaler", "scale", "tile")


@dataclass(frozen=True)
class UpscaleOrder:
    """What an upscale asks for, checked for its types and sizes (its values are the engine's to check)."""

    image: np.ndarray  # uint8 [H, W, 3]
    upscaler: str
    scale: float
    tile: int = DEFAULT_TILE


def upscale_payload(image: np.ndarray, upscaler: str, scale: float, tile: int = DEFAULT_TILE) -> dict[str, Any]:
    """The body of ``POST /v1/upscales``."""
    return {"image": png_b64(image), "upscaler": upscaler, "scale": scale, "tile": tile}


def upscale_from_json(body: Any, *, max_side: int = MAX_IMAGE_SIDE, max_bytes: int = MAX_IMAGE_BYTES) -> UpscaleOrder:
    """The order in a request body. RequestError names the first field that is missing, unknown or of the wrong
    type; TooLarge an image over the server's limits (from its PNG header, before a pixel is decoded)."""
    if not isinstance(body, dict):
        raise RequestError("body", 'must be a JSON object: {"image", "upscaler", "scale", "tile"}')
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(unknown[0], "is not part of an upscale's body")
    if "image" not in body:
        raise RequestError("image", "is missing: the image to upscale, as base64 PNG")
    upscaler = body.get("upscaler", "lanczos")
    if not isinstance(upscaler, str) or not upscaler.strip():
        raise RequestError("upscaler", "must be 'lanczos' or the name of one of the server's upscalers")
    scale = json_number("scale", body.get("scale", 4.0), float)
    tile = json_number("tile", body.get("tile", DEFAULT_TILE), int)
    image = image_from_png_b64(body["image"], "image", mode="RGB", max_side=max_side, max_bytes=max_bytes)
    return UpscaleOrder(image, upscaler.strip(), scale, tile)
