"""The part every rectified-flow family shares behind the engine's DiffusionModel interface.

A family (sd3.py, flux.py, zimage.py) subclasses FlowModel and supplies two things: how prompts become
conditioning (``encode_prompt``) and how its transformer is called (``velocity``: flow-form latent and
t in [0, 1] to the velocity noise - x0). Sampling, guidance, inpainting, branching and previews are the
engine's; the VAE is the shared VaeCodec.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ...denoisers import Cond, Denoiser
from ...flow import FlowDenoiser, FlowSchedule
from ..base import ClassifierGrad, ModelInfo, Recommended
from ..sd.previews import LinearPreview
from ..vae_codec import CodecMethods, VaeCodec, readable_oom


class FlowModel(CodecMethods):
    """Base class: a transformer predicting velocity, a 16-channel VAE, a shifted flow schedule."""

    def __init__(
        self, *, name: str, family: str, vae: torch.nn.Module, schedule: FlowSchedule, device: torch.device,
        weights_dtype: torch.dtype, default_size: tuple[int, int], recommended: Recommended,
        scaling_factor: float, shift_factor: float, patch_size: int = 2, preview: str = "flux",
        distilled_guidance: bool = False, inpainting: bool = False,
    ):
        if recommended.spacing is None:  # see Recommended.spacing: every flow family starts from pure noise
            recommended = replace(recommended, spacing="trailing")
        self.codec = VaeCodec(vae, device, weights_dtype, scaling_factor, shift_factor)
        scale = self.codec.latent_scale
        self.info = ModelInfo(name, family, self.codec.latent_channels, scale, default_size, scale * patch_size,
                              recommended=recommended, inpainting=inpainting,
                              distilled_guidance=distilled_guidance)
        self.schedule = schedule
        self.device = device
        self.dtype = torch.float32  # the sampler's latents stay fp32; only network calls run in weights_dtype
        self.weights_dtype = weights_dtype
        self._denoiser = FlowDenoiser(self._checked_velocity)
        self._preview = LinearPreview(preview, device)

    # -- what a family supplies ------------------------------------------------------------
    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        raise NotImplementedError

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Flow-form latent [B, C, h, w] (float32) and t in [0, 1] [B] -> velocity noise - x0 [B, C, h, w]."""
        raise NotImplementedError

    # -- the engine's interface --------------------------------------------------------------
    def _checked_velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        size = f"{x.shape[-1] * self.info.latent_scale}x{x.shape[-2] * self.info.latent_scale}"
        with readable_oom(f"a denoising step at {size}"):
            return self.velocity(x, t, cond)

    def denoiser(self) -> Denoiser:
        return self._denoiser

    def classifier_grad(self) -> ClassifierGrad | None:
        return None

    def preview(self, x0: torch.Tensor) -> np.ndarray:
        return self._preview(x0)
