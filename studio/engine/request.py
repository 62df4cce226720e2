"""What crosses between the engine and its callers: frozen dataclasses and numpy arrays.

Torch-free, like sampler_names: the UI thread and the command line build and read requests without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .hires_settings import DEFAULT_DENOISE, DEFAULT_UPSCALER, hires_on, hires_problem, hires_size
from .limits import DEFAULT_MAX_SIDE, MAX_FEATHER, MAX_GUIDANCE, MAX_RESAMPLE
from .sampler_names import SPACINGS, find_sampler, sampler_list
from .tile_sizes import check_tile_sizes

MAX_SEED = 2**63 - 1
MAX_CLIP_SKIP = 12  # CLIP ViT-L has 12 layers
MAX_CONTROL_WEIGHT = 4.0  # A1111's ControlNet weight slider ends at 2; files from scripts go further
MAX_INPAINT_PADDING = 1024  # pixels around the mask for "only masked" inpainting
INPAINT_AREAS = ("whole", "masked")  # A1111's "Inpaint area": whole picture, only masked
# A1111's "Masked content": what the masked region starts from before denoising.
MASKED_CONTENTS = ("original", "fill", "latent_noise", "latent_nothing")


class RequestError(ValueError):
    """A request the user can fix; ``field`` names the offending setting."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet unit: a model, its control image and when and how strongly it steers the run."""

    model: str  # a ControlNet's name (file stem, as in its folder) or a path
    image: np.ndarray | None = field(default=None, compare=False, repr=False)  # uint8 [H, W, 3], before preprocessing
    preprocessor: str = "none"  # what turns ``image`` into the control map: none, canny, scribble, lineart, ...
    weight: float = 1.0
    start: float = 0.0  # fraction of the run where the unit starts steering (A1111's "Guidance Start")
    end: float = 1.0  # fraction where it stops (A1111's "Guidance End")


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str = ""
    negative_prompt: str = ""
    model: str = ""
    sampler: str = "dpmpp_2m"
    spacing: str = "leading"  # or "trailing", "linspace", "karras"
    steps: int = 20
    cfg_scale: float = 5.0
    guidance_rescale: float = 0.0
    guidance_interval: tuple[float, float] | None = None  # (sigma_lo, sigma_hi)
    classifier_scale: float = 0.0
    # Flux dev's guidance embedding (Forge's "Distilled CFG Scale"); read only by models with
    # ModelInfo.distilled_guidance, which usually run at cfg_scale 1 (no negative pass).
    distilled_cfg: float = 3.5
    dynamic_threshold: float | None = None  # percentile, e.g. 0.995; None is off
    eta: float = 0.0  # DDIM only
    seed: int = 0
    # AUTOMATIC1111's "Variation seed": the start noise is slerp(seed's noise, this seed's noise, strength).
    variation_seed: int = 0
    variation_strength: float = 0.0  # 0: the seed's noise exactly; 1: the variation seed's
    width: int = 32
    height: int = 32
    strength: float = 1.0  # img2img / inpainting denoising strength
    init_image: np.ndarray | None = field(default=None, compare=False, repr=False)  # uint8 [H, W, 3]
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # float [H, W], 1 = paint
    mask_feather: float = 0.0  # pixels
    resample: int = 0  # RePaint-style extra passes per step when inpainting
    clip_skip: int = 1  # CLIP layers to skip from the end (AUTOMATIC1111's "Clip skip"; 1 is the last layer)
    # LoRAs and embeddings travel in the prompt (<lora:name:weight>, an embedding's name), as in AUTOMATIC1111.
    controlnets: tuple[ControlUnit, ...] = ()
    inpaint_area: str = "whole"  # "masked": crop around the mask, inpaint at the model's size, paste back
    inpaint_padding: int = 32  # pixels kept around the mask's bounding box for "masked"
    masked_content: str = "original"  # see MASKED_CONTENTS
    refiner: str = ""  # an SDXL refiner's model key, name or path; empty is none
    refiner_switch: float = 0.8  # fraction of the steps after which the refiner takes over
    tile_size: int = 0  # pixels: tiled diffusion (and VAE) in overlapping tiles of this side; 0 is off
    vae_tile_size: int = 0  # pixels: the VAE's tiles alone; 0 follows tile_size, or automatic for large images
    # Hires fix (see hires_settings.py): a second, img2img pass at hires_scale times the size; 0 or 1 is off.
    hires_scale: float = 0.0
    hires_steps: int = 0  # steps the second pass runs; 0 is the same as ``steps``
    hires_upscaler: str = DEFAULT_UPSCALER  # "Latent (...)" in latent space, "Lanczos" or a model's name in pixels
    hires_denoise: float = DEFAULT_DENOISE  # the second pass's denoising strength

    @property
    def hires(self) -> bool:
        """Whether this request runs the hires fix's second pass."""
        return hires_on(self.hires_scale)

    def with_changes(self, **changes) -> GenerationRequest:
        return replace(self, **changes)


def _finite(value: object) -> bool:
    """A real number that fits a float (an int of 400 digits does not: math.isfinite overflows on it)."""
    try:
        return isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:
        return False


def _shown(value: object) -> str:
    """A value for a message: short, and never an error of its own (str() refuses ints over 4,300 digits)."""
    try:
        text = repr(value)
    except ValueError:
        return "a number too long to show"
    return text if len(text) <= 40 else text[:37] + "..."


def validate_request(r: GenerationRequest, size_multiple: int = 8, max_side: int = DEFAULT_MAX_SIDE,
                     model_name: str = "this model") -> None:
    """Raise RequestError naming the first field that cannot work (``max_side``: the model's size limit, see
    limits.py)."""
    if not isinstance(r.sampler, str) or find_sampler(r.sampler) is None:
        raise RequestError("sampler", f"unknown sampler {r.sampler!r}; choose one of {sampler_list()}")
    if r.spacing not in SPACINGS:
        raise RequestError("spacing", f"unknown spacing {r.spacing!r}; choose one of {', '.join(SPACINGS)}")
    if not isinstance(r.steps, int) or r.steps < 1 or r.steps > 1000:
        raise RequestError("steps", f"must be a whole number from 1 to 1000, got {_shown(r.steps)}")
    for name in ("cfg_scale", "guidance_rescale", "classifier_scale", "distilled_cfg", "strength", "eta",
                 "mask_feather", "variation_strength"):
        value = getattr(r, name)
        if not _finite(value):
            raise RequestError(name, f"must be a finite number, got {_shown(value)}")
    for name in ("cfg_scale", "classifier_scale", "distilled_cfg"):
        if not 0 <= getattr(r, name) <= MAX_GUIDANCE:
            raise RequestError(name, f"must be from 0 to {MAX_GUIDANCE:g}, got {_shown(getattr(r, name))}")
    if not 0 <= r.guidance_rescale <= 1:
        raise RequestError("guidance_rescale", f"must be between 0 and 1, got {_shown(r.guidance_rescale)}")
    if not 0 <= r.strength <= 1:
        raise RequestError("strength", f"must be between 0 and 1, got {_shown(r.strength)}")
    if not 0 <= r.eta <= 1:
        raise RequestError("eta", f"must be between 0 and 1, got {_shown(r.eta)}")
    if not 0 <= r.mask_feather <= MAX_FEATHER:
        raise RequestError("mask_feather", f"must be from 0 to {MAX_FEATHER} pixels, got {_shown(r.mask_feather)}")
    if not isinstance(r.clip_skip, int) or not 1 <= r.clip_skip <= MAX_CLIP_SKIP:
        raise RequestError("clip_skip", f"must be a whole number from 1 to {MAX_CLIP_SKIP}, got {_shown(r.clip_skip)}")
    if not isinstance(r.resample, int) or not 0 <= r.resample <= MAX_RESAMPLE:
        raise RequestError("resample", f"must be a whole number from 0 to {MAX_RESAMPLE} passes per step, "
                                       f"got {_shown(r.resample)}")
    if r.guidance_interval is not None:
        lo, hi = r.guidance_interval
        if not (_finite(lo) and _finite(hi)) or lo < 0 or lo >= hi:
            raise RequestError("guidance_interval", f"needs 0 <= low < high, got ({_shown(lo)}, {_shown(hi)})")
    if r.dynamic_threshold is not None and not 0 < r.dynamic_threshold <= 1:
        raise RequestError("dynamic_threshold", f"percentile must be in (0, 1], got {_shown(r.dynamic_threshold)}")
    if not isinstance(r.seed, int) or not 0 <= r.seed <= MAX_SEED:
        raise RequestError("seed", f"must be a whole number from 0 to {MAX_SEED}, got {_shown(r.seed)}")
    if not isinstance(r.variation_seed, int) or not 0 <= r.variation_seed <= MAX_SEED:
        raise RequestError("variation_seed",
                           f"must be a whole number from 0 to {MAX_SEED}, got {_shown(r.variation_seed)}")
    if not 0 <= r.variation_strength <= 1:
        raise RequestError("variation_strength", f"must be between 0 and 1, got {_shown(r.variation_strength)}")
    for name, value in (("width", r.width), ("height", r.height)):
        if not isinstance(value, int) or value < size_multiple or value % size_multiple:
            raise RequestError(name, f"must be a positive multiple of {size_multiple} pixels, got {_shown(value)}")
        if value > max_side:
            raise RequestError(name, f"{value} pixels is more than {model_name} allows ({max_side} at most); "
                                     "choose a smaller size")
    _validate_extras(r)
    bad_tile = check_tile_sizes(r.tile_size, r.vae_tile_size, size_multiple, max_side, bool(r.controlnets))
    if bad_tile is not None:
        raise RequestError(*bad_tile)
    _validate_hires(r, size_multiple, max_side, model_name)
    size = (r.height, r.width)
    if r.init_image is not None:
        img = r.init_image
        if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
            raise RequestError("init_image", f"must be a uint8 RGB image, got shape {img.shape} {img.dtype}")
        if r.inpaint_area == "masked" and r.mask is not None:
            # Only masked: a crop around the mask is resized to the request's size, so the photo may be larger
            # (or smaller); the model's side limit still bounds it.
            size = img.shape[:2]
            if max(size) > max_side:
                raise RequestError("init_image", f"is {img.shape[1]}x{img.shape[0]} pixels, more than {model_name} "
                                                 f"allows ({max_side} a side at most); scale the image down")
        elif img.shape[:2] != size:
            raise RequestError(
                "init_image", f"is {img.shape[1]}x{img.shape[0]} but the request is {r.width}x{r.height}")
    if r.mask is not None:
        if r.init_image is None:
            raise RequestError("mask", "inpainting needs an init image to keep outside the mask")
        if r.mask.ndim != 2 or r.mask.shape != size:
            raise RequestError("mask", f"must be {size[1]}x{size[0]} to match the image, got shape {r.mask.shape}")
        if not np.isfinite(r.mask).all():
            raise RequestError("mask", "contains NaN or infinite values")


def _validate_extras(r: GenerationRequest) -> None:
    """ControlNet units, inpaint area and the refiner: ranges only (files are found by the engine)."""
    if r.inpaint_area not in INPAINT_AREAS:
        raise RequestError("inpaint_area", f"must be one of {', '.join(INPAINT_AREAS)}, got {_shown(r.inpaint_area)}")
    if not isinstance(r.inpaint_padding, int) or not 0 <= r.inpaint_padding <= MAX_INPAINT_PADDING:
        raise RequestError("inpaint_padding", f"must be a whole number from 0 to {MAX_INPAINT_PADDING} pixels, "
                                              f"got {_shown(r.inpaint_padding)}")
    if r.masked_content not in MASKED_CONTENTS:
        raise RequestError("masked_content",
                           f"must be one of {', '.join(MASKED_CONTENTS)}, got {_shown(r.masked_content)}")
    if not _finite(r.refiner_switch) or not 0 < r.refiner_switch < 1:
        raise RequestError("refiner_switch", f"must be between 0 and 1 (exclusive), got {_shown(r.refiner_switch)}")
    for i, unit in enumerate(r.controlnets):
        name = f"controlnet {i + 1}"
        if not isinstance(unit, ControlUnit) or not isinstance(unit.model, str) or not unit.model.strip():
            raise RequestError("controlnets", f"{name}: choose a ControlNet model")
        for attr in ("weight", "start", "end"):
            if not _finite(getattr(unit, attr)):
                raise RequestError("controlnets", f"{name}: {attr} must be a finite number, "
                                                  f"got {_shown(getattr(unit, attr))}")
        if not 0 <= unit.weight <= MAX_CONTROL_WEIGHT:
            raise RequestError("controlnets", f"{name}: weight must be from 0 to {MAX_CONTROL_WEIGHT:g}, "
                                              f"got {_shown(unit.weight)}")
        if not 0 <= unit.start < unit.end <= 1:
            raise RequestError("controlnets", f"{name}: needs 0 <= start < end <= 1, got {_shown(unit.start)} "
                                              f"to {_shown(unit.end)}")
        img = unit.image
        if img is None:
            raise RequestError("controlnets", f"{name}: has no control image; draw on the control layer or load one")
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
            raise RequestError("controlnets", f"{name}: the control image must be a uint8 RGB image")


def _validate_hires(r: GenerationRequest, size_multiple: int, max_side: int, model_name: str) -> None:
    """The hires fix's settings, its size on this model, and what it does not run with."""
    problem = hires_problem(r.hires_scale, r.hires_steps, r.hires_upscaler, r.hires_denoise)
    if problem is not None:
        raise RequestError(*problem)
    if not r.hires:
        return
    width, height = hires_size(r.width, r.height, r.hires_scale, size_multiple)
    if max(width, height) > max_side:
        raise RequestError("hires_scale", f"{r.width}x{r.height} times {r.hires_scale:g} is {width}x{height}, more "
                                          f"than {model_name} allows ({max_side} a side at most); choose a "
                                          "smaller scale or size")
    # AUTOMATIC1111 offers hires fix for text-to-image only: an image of the user's is upscaled, then refined.
    if r.init_image is not None or r.mask is not None:
        raise RequestError("hires_scale", "hires fix runs after text-to-image; switch it off to use the "
                                          "canvas image (img2img or inpainting)")
    if r.refiner.strip():
        raise RequestError("hires_scale", "hires fix and the SDXL refiner do not run together yet; switch one off")


@dataclass(frozen=True, eq=False)
class StepEvent:
    run_id: int
    index: int  # 0-based step within the run's schedule
    total: int
    sigma: float
    preview: np.ndarray  # uint8 [h, w, 3] picture of the x0 prediction
    latent: np.ndarray  # float32 [C, h, w], the state after the step
    elapsed: float  # seconds since the run started
    model_switch: bool = False  # the SDXL refiner took over at this step (the timeline marks it)
    hires_start: bool = False  # the hires fix's second pass (at its larger size) starts at this step


@dataclass(frozen=True, eq=False)
class Result:
    run_id: int
    request: GenerationRequest
    image: np.ndarray  # uint8 [H, W, 3]
    latent: np.ndarray  # float32 [C, h, w]
    steps_run: int
    elapsed: float
    parent: tuple[int, int] | None = None  # (run_id, step) this run branched from
    # Parameters the engine found while running, for the parameters text, values unquoted (format_parameters
    # quotes them): ("Lora hashes", "name: 0123456789ab, name2: ..."), ...
    infotext: tuple[tuple[str, str], ...] = ()
