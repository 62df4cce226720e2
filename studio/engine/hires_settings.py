"""Hires fix settings, torch-free: the upscaler names, the second pass's size and step count, their checks.

AUTOMATIC1111's hires fix runs a first pass at the request's size, makes the result larger
(in latent space, or decoded, upscaled in pixels and encoded again), then runs an img2img
pass over it. The facts kept from AUTOMATIC1111 (modules/processing.py, sd_samplers_common.py):

- "Hires upscale" S makes the second pass int(width * S) x int(height * S) (here also brought
  down to the model's size multiple, which AUTOMATIC1111 does by integer division into the latent).
- "Hires steps" N (0: the first pass's steps) is the number of steps the second pass runs: its
  schedule has int(N / min(denoise, 0.999)) steps and it runs the last N of them, so a lower
  "Denoising strength" starts it at a lower noise level, never with fewer steps. Denoise 0 runs none.
- The latent upscalers are torch's interpolation modes under AUTOMATIC1111's names.

Torch-free so that the request's checks, the panel and the parameters text can read it.
"""

from __future__ import annotations

import math

# AUTOMATIC1111's latent upscaler names -> (torch interpolate mode, antialias).
LATENT_UPSCALERS: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
PIXEL_UPSCALERS = ("Lanczos",)  # always there; upscaler model files add their names (engine/upscalers)
DEFAULT_UPSCALER = "Latent"
DEFAULT_DENOISE = 0.7  # AUTOMATIC1111's default "Denoising strength" for hires fix
MAX_HIRES_SCALE = 4.0  # AUTOMATIC1111's slider ends there; the model's side limit bounds the result too
MAX_UPSCALER_NAME = 200  # characters: a file stem or a path


def hires_on(scale: float) -> bool:
    """0 and 1 are off (as AUTOMATIC1111's checkbox off and its scale 1)."""
    return scale not in (0, 1)


def latent_mode(upscaler: str) -> tuple[str, bool] | None:
    """(interpolate mode, antialias) for a latent upscaler's name (any letter case), None for a pixel one."""
    key = " ".join(upscaler.split()).lower()
    for name, mode in LATENT_UPSCALERS.items():
        if name.lower() == key:
            return mode
    return None


def canonical_upscaler(name: str) -> str:
    """AUTOMATIC1111's spelling of a latent upscaler or Lanczos typed in any case; other names as given."""
    key = " ".join(name.split()).lower()
    for known in (*LATENT_UPSCALERS, *PIXEL_UPSCALERS):
        if known.lower() == key:
            return known
    return name.strip()


def hires_size(width: int, height: int, scale: float, multiple: int = 8) -> tuple[int, int]:
    """The second pass's (width, height): the first's times ``scale``, down to the size multiple."""
    w, h = int(width * scale), int(height * scale)
    return max(multiple, w - w % multiple), max(multiple, h - h % multiple)


def hires_step_counts(steps: int, hires_steps: int, denoise: float) -> tuple[int, int]:
    """(steps in the second pass's schedule, steps it runs): AUTOMATIC1111's rule, see the module doc."""
    run = hires_steps or steps
    if denoise <= 0:
        return 0, 0
    return int(run / min(denoise, 0.999)), run


def hires_problem(scale: object, steps: object, upscaler: object, denoise: object) -> tuple[str, str] | None:
    """(field, message) for the first hires setting that cannot work, None when they all can."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        return "hires_scale", f"must be a number (0 or 1 is off), got {scale!r}"
    if not hires_on(scale):
        return None
    if not 1 < scale <= MAX_HIRES_SCALE:
        return "hires_scale", f"must be 0 (off) or from 1 to {MAX_HIRES_SCALE:g}, got {scale:g}"
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 1000:
        return "hires_steps", f"must be a whole number from 0 (the same as Steps) to 1000, got {steps!r}"
    if isinstance(denoise, bool) or not isinstance(denoise, int | float) or not (
            math.isfinite(denoise) and 0 <= denoise <= 1):
        return "hires_denoise", f"must be between 0 and 1, got {denoise!r}"
    if not isinstance(upscaler, str) or not upscaler.strip() or len(upscaler) > MAX_UPSCALER_NAME:
        return "hires_upscaler", ("choose an upscaler: " + ", ".join((*LATENT_UPSCALERS, *PIXEL_UPSCALERS))
                                  + " or an upscaler model's name")
    return None
