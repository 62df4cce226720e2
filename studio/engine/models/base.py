"""The interface every model family implements for the runner.

The runner drives a model only through this: text to conditioning, a denoiser,
the training schedule, image <-> latent, and a cheap preview. Pixel-space models
use the image itself (scaled to [-1, 1]) as the latent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ..denoisers import Cond, Denoiser
from ..schedules import DiscreteSchedule

# grad(x, sigma, cond) -> d/dx log p(label | x, sigma), for classifier guidance.
ClassifierGrad = Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor]


@dataclass(frozen=True)
class Recommended:
    """Settings a model gives its best pictures with; the studio applies them when a user picks it."""

    steps: int = 20
    cfg_scale: float = 7.0
    classifier_scale: float = 0.0
    distilled_cfg: float | None = None  # a model with distilled guidance (Flux dev 3.5, Fill 30)
    # The timestep spacing it needs, if any: flow models start from pure noise only with trailing spacing
    # (linspace(1, 1/N), the pipelines' and ComfyUI's "simple"); "leading" would start them at t = 0.75 or so.
    spacing: str | None = None
    # The img2img strength it needs, if any: the emoji colouriser paints the whole picture (1) from the grey one.
    strength: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str  # "embedded", "toy", "sd1", "sd2", "sdxl", "sd3", "flux", "zimage", ...
    latent_channels: int
    latent_scale: int  # image pixels per latent pixel (8 for SD's VAE, 1 in pixel space)
    default_size: tuple[int, int]  # (width, height) the model was trained at
    size_multiple: int = 8  # width and height must be multiples of this
    has_classifier: bool = False
    recommended: Recommended = Recommended()
    clip_skip: bool = False  # whether encode_prompt honours clip_skip (SD 1.x / 2.x CLIP encoders)
    # An inpainting network (SD 1.5 / SDXL inpainting): its cond carries "concat", the mask and the masked
    # image's latent, which it joins to its input (see inpaint_models.py); the runner adds it to cond and uncond.
    # Such a model also has ``encode_unit(float [1, 3, H, W] in [-1, 1]) -> latent`` for the masked image, or
    # its own ``inpainting_concat(mask, masked, image) -> cond entries`` (Flux Fill, the Palette models).
    inpainting: bool = False
    # Flux dev: the network takes the guidance strength as an input (request.distilled_cfg, Forge's
    # "Distilled CFG Scale"); the runner adds cond["guidance"] [B] to cond and uncond.
    distilled_guidance: bool = False


class DiffusionModel(Protocol):
    info: ModelInfo
    schedule: DiscreteSchedule  # or a flow.FlowSchedule, which the runner resolves per size (schedule_at_size)
    device: torch.device
    dtype: torch.dtype

    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        """Conditioning for the prompt and for the negative (unconditional) prompt, batch 1.

        ``clip_skip`` > 1 reads the text encoder that many layers from the end; models
        whose ``info.clip_skip`` is False ignore it (the runner refuses such requests)."""
        ...

    def denoiser(self) -> Denoiser: ...

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] image -> latent [1, C, h, w] on the model's device."""
        ...

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        """Latent [1, C, h, w] -> final uint8 [H', W', 3] image (may upsample, e.g. a cascade)."""
        ...

    def preview(self, x0: torch.Tensor) -> np.ndarray:
        """A cheap uint8 [h, w, 3] picture of a latent x0 prediction, for every step."""
        ...

    def classifier_grad(self) -> ClassifierGrad | None:
        """The noisy classifier's gradient hook, or None when the model has no classifier."""
        ...


def image_to_unit(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [1, 3, H, W] in [-1, 1]."""
    t = torch.from_numpy(np.array(image[..., :3], dtype=np.uint8)).permute(2, 0, 1).float()
    return (t / 127.5 - 1).unsqueeze(0)


def unit_to_image(x: torch.Tensor) -> np.ndarray:
    """float [1, 3, H, W] in [-1, 1] -> uint8 [H, W, 3], rounding to nearest (ties to even)."""
    # The arithmetic runs in numpy: torch runs round() as a parallel region even on a 32 px
    # preview, and waking the sleeping worker thread for it cost milliseconds a step on a busy CPU.
    unit = x[0].detach().float().clamp(-1, 1).cpu().numpy()
    return np.rint((unit + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
