"""The part every rectified-flow family shares behind the engine's DiffusionModel interface.

A family (sd3.py, flux.py, zimage.py) subclasses FlowModel and supplies two things: how prompts become
conditioning (``encode_prompt``) and how its transformer is called (``velocity``: flow-form latent and
t in [0, 1] to the velocity noise - x0). Sampling, guidance, inpainting, branching and previews are the
engine's; the VAE is the shared VaeCodec.

Memory: a family also names its networks by use (``memory_groups``); ``place`` (called by the loader) decides
where they live (offload.py) and each phase puts its group on the device first: the text encoders while a
prompt is encoded, the transformer while denoising, the VAE while encoding or decoding images.
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
from .offload import MemoryPlan, Placement, choose_placement, group_sizes


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
        self.placement: Placement | None = None  # set by ``place``; until then the parts stay where loading left them
        self.memory_plan: MemoryPlan | None = None

    # -- what a family supplies ------------------------------------------------------------
    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        raise NotImplementedError

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Flow-form latent [B, C, h, w] (float32) and t in [0, 1] [B] -> velocity noise - x0 [B, C, h, w]."""
        raise NotImplementedError

    def memory_groups(self) -> dict[str, list[torch.nn.Module]]:
        """The networks by use: "text_encoders", "transformer", "vae" (a missing encoder is None)."""
        raise NotImplementedError

    # -- memory --------------------------------------------------------------------------------
    def place(self, mode: str = "auto", free: int | None = None) -> MemoryPlan:
        """Decide where the parts live on this model's device (offload.choose_placement; ``free`` given by tests)
        and put them there: a model that cannot fit is a ModelLoadError now, not an out-of-memory error mid-run."""
        groups = self.memory_groups()
        plan = choose_placement(mode, group_sizes(groups), self.device, free)
        if self.placement is not None:
            self.placement.close()
        self.placement = Placement(groups, self.device, plan.mode)
        self.memory_plan = plan
        return plan

    def use(self, group: str) -> None:
        """Put ``group`` on the device before it runs (placing the model first if the loader did not)."""
        if self.placement is None:
            self.place()
        self.placement.use(group)

    # -- the engine's interface --------------------------------------------------------------
    def _checked_velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        size = f"{x.shape[-1] * self.info.latent_scale}x{x.shape[-2] * self.info.latent_scale}"
        self.use("transformer")
        with readable_oom(f"a denoising step at {size}"):
            return self.velocity(x, t, cond)

    def denoiser(self) -> Denoiser:
        return self._denoiser

    def classifier_grad(self) -> ClassifierGrad | None:
        return None

    def preview(self, x0: torch.Tensor) -> np.ndarray:
        return self._preview(x0)

    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        self.use("vae")
        return super().encode_image(image)

    def encode_unit(self, unit: torch.Tensor) -> torch.Tensor:
        self.use("vae")
        return super().encode_unit(unit)

    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        self.use("vae")
        return super().decode(latent, generator)
