"""What the server and its clients say to each other: JSON objects, PNG and .npy in base64, never pickle.

Pure functions both sides use (numpy, Pillow and the engine's torch-free request module; no Ray, no aiohttp):
a GenerationRequest to and from JSON, images to and from base64 PNG, step events to and from NDJSON lines.
The HTTP API they travel in is described in docs/serve.md.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import warnings
from dataclasses import fields
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from ..engine.request import ControlUnit, GenerationRequest, RequestError, StepEvent
from ..io.png import PARAMETERS_KEY
from .security import MAX_IMAGE_BYTES, MAX_IMAGE_SIDE, TooLarge

API_PREFIX = "/v1"
NDJSON = "application/x-ndjson"
IMAGE_FIELDS = ("init_image", "mask", "controlnets")  # travel in the payload's "images", not in "request"
CONTROL_FIELDS = ("model", "preprocessor", "weight", "start", "end")
# Request fields that may be null (their default is None) and what they hold otherwise.
OPTIONAL_NUMBERS = ("dynamic_threshold",)
_DEFAULTS = GenerationRequest()
SCALAR_FIELDS = tuple(f.name for f in fields(GenerationRequest) if f.name not in IMAGE_FIELDS)


# ---- requests ------------------------------------------------------------------------------------------------

def request_to_json(request: GenerationRequest) -> dict[str, Any]:
    """The request's fields by name (images left out: see ``images_to_json``); controlnets without their image."""
    out: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        value = getattr(request, name)
        out[name] = list(value) if name == "guidance_interval" and value is not None else value
    out["controlnets"] = [{key: getattr(unit, key) for key in CONTROL_FIELDS} for unit in request.controlnets]
    return out


def images_to_json(request: GenerationRequest) -> dict[str, Any]:
    """The request's images as base64 PNG: init (RGB), mask (L, 255 = paint), one control image per unit."""
    images: dict[str, Any] = {}
    if request.init_image is not None:
        images["init"] = png_b64(request.init_image)
    if request.mask is not None:
        images["mask"] = png_b64(np.clip(np.rint(np.asarray(request.mask) * 255), 0, 255).astype(np.uint8))
    if request.controlnets:
        images["control"] = [png_b64(u.image) if u.image is not None else None for u in request.controlnets]
    return images


def run_payload(request: GenerationRequest, branch: dict[str, Any] | None = None,
                latents: bool = False) -> dict[str, Any]:
    """The body of ``POST /v1/runs`` for ``request`` (``branch``: {"run", "step", "state"?})."""
    return {"request": request_to_json(request), "images": images_to_json(request), "branch": branch,
            "latents": latents}


def json_number(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (int or float); a bool or a string is refused even where Python would take it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(name, f"must be a number, got {type(value).__name__}")
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise RequestError(name, f"must be a whole number, got {value!r}")
            value = int(value)
        return value
    if isinstance(value, int) and abs(value) > 2**1023:
        raise RequestError(name, "is too large")
    return float(value)


def _field_value(name: str, value: Any) -> Any:
    default = getattr(_DEFAULTS, name)
    if name == "guidance_interval":
        if value is None:
            return None
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise RequestError(name, "must be [low, high] or null")
        return (json_number(name, value[0], float), json_number(name, value[1], float))
    if name in OPTIONAL_NUMBERS:
        return None if value is None else json_number(name, value, float)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise RequestError(name, f"must be text, got {type(value).__name__}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RequestError(name, f"must be true or false, got {type(value).__name__}")
        return value
    if isinstance(default, int | float):
        return json_number(name, value, type(default))
    raise RequestError(name, "cannot be sent to a server")


def request_from_json(data: Any, images: Any = None, *, max_side: int = MAX_IMAGE_SIDE,
                      max_bytes: int = MAX_IMAGE_BYTES) -> GenerationRequest:
    """A GenerationRequest from its JSON fields and base64 PNG images.

    RequestError names the first field that is unknown or of the wrong type; TooLarge an image over the limits
    (checked from its size and PNG header, before its pixels are decoded). The request's values are not
    range-checked here: the engine's validate_request does that, with the model's limits."""
    if not isinstance(data, dict):
        raise RequestError("request", "must be a JSON object of request fields")
    if images is None:
        images = {}
    if not isinstance(images, dict):
        raise RequestError("images", "must be a JSON object: {\"init\", \"mask\", \"control\"}")
    unknown = sorted(set(data) - set(SCALAR_FIELDS) - {"controlnets"})
    if unknown:
        raise RequestError(unknown[0], "is not a request field this server knows")
    values = {name: _field_value(name, value) for name, value in data.items() if name != "controlnets"}
    limits = {"max_side": max_side, "max_bytes": max_bytes}
    init = images.get("init")
    if init is not None:
        values["init_image"] = image_from_png_b64(init, "init_image", mode="RGB", **limits)
    mask = images.get("mask")
    if mask is not None:
        values["mask"] = image_from_png_b64(mask, "mask", mode="L", **limits).astype(np.float32) / 255.0
    values["controlnets"] = _control_units(data.get("controlnets", []), images.get("control") or [], limits)
    return GenerationRequest(**values)


def _control_units(units: Any, control_images: Any, limits: dict[str, int]) -> tuple[ControlUnit, ...]:
    if not isinstance(units, list):
        raise RequestError("controlnets", "must be a list of units")
    if not isinstance(control_images, list):
        raise RequestError("controlnets", "images.control must be a list of base64 PNGs, one per unit")
    out = []
    for i, unit in enumerate(units):
        if not isinstance(unit, dict):
            raise RequestError("controlnets", f"controlnet {i + 1}: must be an object")
        extra = sorted(set(unit) - set(CONTROL_FIELDS))
        if extra:
            raise RequestError("controlnets", f"controlnet {i + 1}: {extra[0]!r} is not a unit field")
        model, pre = unit.get("model", ""), unit.get("preprocessor", "none")
        if not isinstance(model, str) or not isinstance(pre, str):
            raise RequestError("controlnets", f"controlnet {i + 1}: model and preprocessor must be text")
        numbers = {key: json_number("controlnets", unit.get(key, default), float)
                   for key, default in (("weight", 1.0), ("start", 0.0), ("end", 1.0))}
        encoded = control_images[i] if i < len(control_images) else None
        image = image_from_png_b64(encoded, "controlnets", mode="RGB", **limits) if encoded is not None else None
        out.append(ControlUnit(model, image, pre, **numbers))
    return tuple(out)


# ---- images and arrays ---------------------------------------------------------------------------------------

def png_bytes(image: np.ndarray, parameters: str | None = None) -> bytes:
    """uint8 [H, W, 3] (RGB) or [H, W] (L) as PNG, with ``parameters`` in its text chunk when given."""
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = array[..., :3]
    info = None
    if parameters:
        info = PngImagePlugin.PngInfo()
        info.add_itxt(PARAMETERS_KEY, parameters)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return buffer.getvalue()


def png_b64(image: np.ndarray, parameters: str | None = None) -> str:
    return base64.b64encode(png_bytes(image, parameters)).decode("ascii")


def b64_bytes(text: Any, field: str, max_bytes: int | None = None) -> bytes:
    """Base64 text decoded; RequestError when it is not base64, TooLarge (from its length) over ``max_bytes``."""
    if not isinstance(text, str):
        raise RequestError(field, f"must be base64 text, got {type(text).__name__}")
    if max_bytes is not None and len(text) * 3 // 4 > max_bytes + 2:
        raise TooLarge(f"{field}: {len(text) * 3 // 4 / 2**20:.1f} MiB is more than the {max_bytes / 2**20:g} MiB "
                       "this server takes", field)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(field, f"is not valid base64 ({exc})") from exc


def image_from_png_b64(text: Any, field: str = "image", mode: str | None = None, *,
                       max_side: int | None = MAX_IMAGE_SIDE, max_bytes: int | None = MAX_IMAGE_BYTES) -> np.ndarray:
    """A base64 PNG as uint8 numpy ([H, W, 3] for RGB, [H, W] for L; ``mode`` converts, None keeps RGB/L).

    Its size is checked from the PNG header before a pixel is decoded (TooLarge); anything else than a readable
    PNG is a RequestError naming ``field``."""
    data = b64_bytes(text, field, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            width, height = image.size
            if max_side is not None and max(width, height) > max_side:
                raise TooLarge(f"{field}: {width}x{height} pixels is larger than the {max_side}x{max_side} this "
                               "server takes", field)
            image.load()
    except TooLarge:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise RequestError(field, f"is not a readable PNG image ({' '.join(str(exc).split())[:200]})") from exc
    if mode is None:
        mode = "L" if image.mode in ("L", "I", "I;16", "1") else "RGB"
    if image.mode != mode:
        if mode == "RGB" and image.mode in ("RGBA", "LA", "PA") or image.mode == "P" and "transparency" in image.info:
            # Alpha composited on white, as the studio loads image files (io/png.load_image).
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert(mode)
    return np.asarray(image, dtype=np.uint8).copy()


def npy_b64(array: np.ndarray) -> str:
    """A float array as a base64 .npy file (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def array_from_npy_b64(text: Any, field: str = "latent") -> np.ndarray:
    data = b64_bytes(text, field)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise RequestError(field, f"is not a readable .npy array ({exc})") from exc


# ---- events ---------------------------------------------------------------------------------------------------

def step_to_json(event: StepEvent, run: str, latents: bool = False) -> dict[str, Any]:
    """A StepEvent as its NDJSON object (the latent only when the client asked for it)."""
    out = {"type": "step", "run": run, "index": event.index, "total": event.total, "sigma": event.sigma,
           "elapsed": event.elapsed, "preview": png_b64(event.preview), "model_switch": event.model_switch,
           "hires_start": event.hires_start}
    if latents:
        out["latent"] = npy_b64(np.asarray(event.latent, dtype=np.float32))
    return out


def event_to_json(event: StepEvent | dict[str, Any], run: str = "", latents: bool = False) -> dict[str, Any]:
    """A StepEvent (or an already-built event object) as its NDJSON object."""
    if isinstance(event, StepEvent):
        return step_to_json(event, run, latents)
    return dict(event)


def event_line(event: dict[str, Any]) -> bytes:
    """One NDJSON line: compact JSON, never NaN (which JSON lacks), and a newline."""
    return json.dumps(_finite_json(event), separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _finite_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


def event_from_json(obj: Any) -> dict[str, Any]:
    """An NDJSON event with its images (preview, image) as uint8 numpy arrays and its latent as float32.

    Accepts a decoded dict or one line of text / bytes; RequestError when it is not an event."""
    if isinstance(obj, bytes | bytearray | str):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise RequestError("event", f"is not JSON ({exc})") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise RequestError("event", "must be a JSON object with a 'type'")
    out = dict(obj)
    for key in ("preview", "image"):
        if isinstance(out.get(key), str):
            out[key] = image_from_png_b64(out[key], key, max_side=None, max_bytes=None)
    if isinstance(out.get("latent"), str):
        out["latent"] = array_from_npy_b64(out["latent"]).astype(np.float32, copy=False)
    if isinstance(out.get("parent"), list):
        out["parent"] = tuple(out["parent"])
    return out


def loads_body(body: bytes) -> Any:
    """A request body's JSON; RequestError ("body") with the parser's message when it is malformed.

    NaN and Infinity, which Python's parser would take, are refused: JSON has no such numbers."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(body, parse_constant=refuse)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("body", f"is not valid JSON: {exc}") from exc


def error_json(message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": message, "field": field}
