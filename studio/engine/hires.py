"""The hires fix's second pass: the first pass's result made larger, then denoised again at the new size.

The runner runs both passes as one run: one step history, one stream of step events (the second
pass's steps follow the first's), so either pass can be branched from. What is settled here:

- the second pass's request (the larger size, its own steps, its denoising strength),
- its schedule (AUTOMATIC1111's rule, see hires_settings.py),
- the upscale: in latent space with torch's interpolation (the "Latent" upscalers), or decoded,
  upscaled in pixels by ``upscalers.upscale_image`` (Lanczos, upscaler model files) and encoded again,
- its start noise: drawn from the run's own generator after the first pass's last step, so a run
  branched anywhere before it draws the same noise again and replays the second pass bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .hires_settings import hires_size, hires_step_counts, latent_mode
from .models.base import DiffusionModel
from .models.errors import ModelLoadError
from .models.sd.adapter_files import AdapterLibrary
from .noise import initial_noise
from .request import GenerationRequest, RequestError
from .schedules import sampling_sigmas, schedule_at_size
from .upscalers import is_lanczos, resolve_upscaler, upscale_image


@dataclass(frozen=True, eq=False)
class HiresPass:
    """The second pass of a hires-fix request."""

    request: GenerationRequest  # at the hires size; ``steps`` is the number of steps the pass runs
    sigmas: torch.Tensor  # its schedule from the first noise level it runs at; [0.] when it runs no step

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1


def hires_pass(model: DiffusionModel, request: GenerationRequest) -> HiresPass | None:
    """The request's second pass on ``model``, or None when hires fix is off."""
    if not request.hires:
        return None
    width, height = hires_size(request.width, request.height, request.hires_scale, model.info.size_multiple)
    schedule_steps, run = hires_step_counts(request.steps, request.hires_steps, request.hires_denoise)
    if run == 0:
        sigmas = torch.zeros(1)
    else:
        schedule = schedule_at_size(model.schedule, width, height)  # flow models shift their schedule by size
        full = sampling_sigmas(schedule, schedule_steps, request.spacing, getattr(model, "steps_offset", 0))
        sigmas = full[-(run + 1):]
    second = request.with_changes(width=width, height=height, steps=max(run, 1), strength=request.hires_denoise,
                                  hires_scale=0.0)
    return HiresPass(second, sigmas)


def check_upscaler(request: GenerationRequest, library: AdapterLibrary) -> None:
    """Before the first pass: an upscaler model's name must name a file (a RequestError names the closest ones)."""
    name = request.hires_upscaler
    if not request.hires or latent_mode(name) is not None or is_lanczos(name):
        return
    try:
        resolve_upscaler(name, library)
    except RequestError as exc:
        raise RequestError("hires_upscaler", str(exc).removeprefix(f"{exc.field}: ")) from exc


def upscaled_latent(model: DiffusionModel, x: torch.Tensor, first: GenerationRequest, second: HiresPass,
                    seed: int, library: AdapterLibrary | None = None) -> torch.Tensor:
    """The first pass's final latent ``x`` brought to the second pass's size (``library``: where upscaler model
    files are found by name)."""
    request = second.request
    mode = latent_mode(first.hires_upscaler)
    if mode is not None:
        scale = model.info.latent_scale
        size = (request.height // scale, request.width // scale)
        name, antialias = mode
        options = {"antialias": antialias} if name in ("bilinear", "bicubic") else {}
        return F.interpolate(x.float(), size=size, mode=name, **options).to(x.dtype)
    # A pixel upscaler: decode (with its own generator, as the final decode has), upscale, encode.
    image = model.decode(x, generator=torch.Generator("cpu").manual_seed(seed))
    factor = max(request.width / image.shape[1], request.height / image.shape[0])
    try:
        larger = upscale_image(image, factor, first.hires_upscaler, library=library, device=model.device)
    except RequestError as exc:
        raise RequestError("hires_upscaler", str(exc).removeprefix(f"{exc.field}: ")) from exc
    except ModelLoadError as exc:
        raise RequestError("hires_upscaler", str(exc)) from exc
    if larger.shape[:2] != (request.height, request.width):  # the size multiple may have trimmed a few pixels
        larger = np.asarray(Image.fromarray(larger).resize((request.width, request.height),
                                                           Image.Resampling.LANCZOS))
    return model.encode_image(larger).to(x.dtype)


def second_pass_noise(model: DiffusionModel, latent: torch.Tensor, request: GenerationRequest,
                      generator: torch.Generator) -> torch.Tensor:
    """The second pass's noise, from the run's generator where the first pass left it (a variation seed
    moves it as it moves the first pass's)."""
    return initial_noise(tuple(latent.shape), generator, request.variation_seed, request.variation_strength,
                         latent.device, latent.dtype)
