"""Making an image larger: Lanczos always, upscaler model files (ESRGAN and kin) when the user has them.

The one entry point the runner (hires fix), the command line and the UI call is ``upscale_image``.
Model files are found by name through the AdapterLibrary's "upscaler" kind (A1111's ``models/ESRGAN``,
``RealESRGAN``, ``SwinIR``, ``DAT``, ...; ComfyUI's ``models/upscale_models``; Settings folders),
loaded by ``model_file`` and run tile by tile by ``tiles``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..adapter_names import not_found_message
from ..request import RequestError

if TYPE_CHECKING:
    import torch

    from ..models.sd.adapter_files import AdapterLibrary
    from .model_file import UpscalerModel

LANCZOS = "lanczos"
LANCZOS_LABEL = "Lanczos"  # the name A1111 writes
DEFAULT_TILE = 256  # input pixels a side: an ESRGAN-sized 4x network needs about 1 GB for one such tile
DEFAULT_OVERLAP = 32  # or a quarter of a smaller tile
MAX_MODEL_PASSES = 3  # as A1111: a 4x network asked for 16x runs twice; more would only enlarge artefacts
MAX_SCALE = 16.0
# The largest image the studio opens (io/png.py's MAX_IMAGE_PIXELS): a larger result could not be opened again.
MAX_OUTPUT_PIXELS = 8192 * 8192


class UpscalerNotFound(RequestError):
    """A name that matches no upscaler file; the message names the closest ones."""


def is_lanczos(upscaler: str) -> bool:
    return upscaler.strip().lower() == LANCZOS


def resolve_upscaler(name_or_path: str, library: AdapterLibrary | None = None) -> Path:
    """The file an upscaler name (a file stem, case-insensitive) or path means; UpscalerNotFound names the closest
    names, Lanczos among them."""
    from ..models.sd.adapter_files import SUFFIXES, AdapterLibrary, AdapterNotFound

    library = library if library is not None else AdapterLibrary()
    text = name_or_path.strip()
    is_path = "/" in text or "\\" in text
    if is_path and not library.allow_paths:  # a server's client: refused before the file system is asked anything
        raise UpscalerNotFound("upscaler", f"{text!r} is a path; name one of the upscalers here instead (their file "
                                           "names without the folder)")
    if is_path and not Path(text).expanduser().exists():
        raise UpscalerNotFound("upscaler", f"no such upscaler file: {text}")
    try:
        return library.find("upscaler", text).path
    except AdapterNotFound:
        names = [a.name for a in library.list("upscaler")]
    stem = Path(text).stem
    if Path(text).suffix.lower() in SUFFIXES["upscaler"] and stem:
        found = next((a for a in library.list("upscaler") if a.name.lower() == stem.lower()), None)
        if found is not None:  # "4x-UltraSharp.pth": the file's name with its suffix
            return found.path
    if not names:
        message = not_found_message("upscaler", text, names)
        raise UpscalerNotFound("upscaler", f"{message}; {LANCZOS_LABEL} needs no file")
    raise UpscalerNotFound("upscaler", not_found_message("upscaler", text, [LANCZOS_LABEL, *names]))


def upscaler_label(upscaler: str, library: AdapterLibrary | None = None) -> str:
    """The name to write in parameters text: ``Lanczos``, or the model file's stem as it is on disk (A1111 names
    its ESRGAN upscalers so), whatever case the user typed."""
    if is_lanczos(upscaler):
        return LANCZOS_LABEL
    return resolve_upscaler(upscaler, library).stem


def upscale_image(image: np.ndarray, scale: float, upscaler: str = LANCZOS, *,
                  library: AdapterLibrary | None = None, tile: int = DEFAULT_TILE, overlap: int | None = None,
                  device: str | torch.device = "auto",
                  on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [round(H * scale), round(W * scale), 3] with the named upscaler.

    ``upscaler``: ``lanczos`` or an upscaler file's name or path (found in ``library``'s folders). A model runs
    at its own factor in tiles of ``tile`` pixels (0: untiled) overlapping by ``overlap`` (default 32, at most a
    quarter of the tile), as often as it takes to reach ``scale``; Lanczos then brings the result to the exact
    size. ``on_progress(done, total)`` counts tiles (it may raise to stop). Raises RequestError for a value the
    user can fix, ModelLoadError for a file.
    """
    _check_scale(scale)
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size[0] * size[1] > MAX_OUTPUT_PIXELS:
        raise RequestError("scale", f"{width}x{height} upscaled {scale:g}x is {size[0]}x{size[1]}, more than the "
                                    f"{MAX_OUTPUT_PIXELS:,} pixels the studio opens; choose a smaller factor")
    if is_lanczos(upscaler):
        return _lanczos(image, size)
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, tile // 4) if tile else DEFAULT_OVERLAP
    _check_tile(tile, overlap)
    model = _cached_model(resolve_upscaler(upscaler, library), device)
    passes = _passes(scale, model.scale)
    current = np.ascontiguousarray(image[..., :3])
    for index in range(passes):
        current = _run_model(model, current, tile, overlap, _pass_progress(on_progress, index, passes))
    if current.shape[1] != size[0] or current.shape[0] != size[1]:
        current = _lanczos(current, size)
    return current


def _check_scale(scale: float) -> None:
    if not (isinstance(scale, int | float) and 0 < scale <= MAX_SCALE):
        raise RequestError("scale", f"the upscale factor takes more than 0 up to {MAX_SCALE:g}, not {scale!r}")


def _check_tile(tile: int, overlap: int) -> None:
    from .tiles import MIN_TILE

    if tile != 0 and tile < MIN_TILE:
        raise RequestError("tile", f"tiles are at least {MIN_TILE} pixels (or 0 for no tiling), not {tile}")
    if overlap < 0 or (tile and overlap > tile // 2):
        raise RequestError("tile", f"the tile overlap takes 0 to half the tile ({tile // 2}), not {overlap}")


def _lanczos(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(image[..., :3])).resize(size, Image.Resampling.LANCZOS))


def _passes(scale: float, model_scale: int) -> int:
    """How often a ``model_scale`` network runs to reach ``scale`` (once at least: a 4x network asked for 2x still
    adds its detail, then Lanczos reduces)."""
    passes, reached = 1, model_scale
    while reached < scale and passes < MAX_MODEL_PASSES and model_scale > 1:
        passes += 1
        reached *= model_scale
    return passes


def _pass_progress(on_progress: Callable[[int, int], None] | None, index: int,
                   passes: int) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None
    if passes == 1:
        return on_progress
    return lambda done, total: on_progress(index * total + done, passes * total)


def _run_model(model: UpscalerModel, image: np.ndarray, tile: int, overlap: int,
               on_tile: Callable[[int, int], None] | None) -> np.ndarray:
    import torch

    from ..models.errors import ModelLoadError
    from .tiles import run_tiled

    pixels = torch.tensor(image).permute(2, 0, 1)[None].float() / 255.0  # a copy: PIL's arrays are read-only
    try:
        out = run_tiled(pixels, model, model.scale, tile, overlap, on_tile)
    except ValueError as exc:  # the network's output is not the size its weights promised
        raise ModelLoadError(f"{model.info.path.name}: {exc}") from None
    return (out[0].clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


_loaded: dict[tuple, UpscalerModel] = {}  # the last upscaler used, so a second image does not read the file again


def _cached_model(path: Path, device: str | torch.device) -> UpscalerModel:
    from ..devices import pick_device
    from .model_file import load_upscaler

    target = pick_device(device)
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(target))
    except OSError:
        key = (str(path), 0, 0, str(target))
    if key not in _loaded:
        _loaded.clear()  # one network at a time: an ESRGAN holds 67 MB, a DAT several hundred
        _loaded[key] = load_upscaler(path, target)
    return _loaded[key]
