"""An upscale of a finished image, as it crosses to the engine thread and back (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANCZOS = "lanczos"  # the upscaler that needs no file (engine/upscalers names it the same)
DEFAULT_TILE = 256  # input pixels a side, as engine/upscalers uses by default


@dataclass(frozen=True)
class UpscaleJob:
    job_id: int
    image: np.ndarray  # uint8 [H, W, 3]
    upscaler: str  # "lanczos", or an upscaler file's name (as the engine listed it) or path
    scale: float
    tile: int = DEFAULT_TILE


@dataclass(frozen=True)
class UpscaleProgress:
    job_id: int
    done: int  # tiles finished
    total: int


@dataclass(frozen=True)
class UpscaleResult:
    job_id: int
    image: np.ndarray  # uint8 [round(H * scale), round(W * scale), 3]
    label: str  # the upscaler's name as parameters text writes it ("Lanczos", a file's stem)
    scale: float
    elapsed: float
