"""A Stable Diffusion model behind the engine's DiffusionModel interface.

The networks come from diffusers/transformers; everything else is the engine's.
The sampler state stays in float32 (``dtype``) while the weights may run in
fp16/bf16 (``weights_dtype``): the runner's latents and history keep full
precision and only the network calls are cast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...denoisers import Cond, Denoiser, DiscreteTimeDenoiser
from ...schedules import DiscreteSchedule
from ..base import ClassifierGrad, ModelInfo, Recommended
from ..vae_codec import CodecMethods, VaeCodec, readable_oom
from . import XL_FAMILIES
from .adapter_files import AdapterFile
from .embeddings import ti_hashes
from .lora import LoraWeights
from .previews import LinearPreview
from .prompts import PromptEncoder

# The refiner's aesthetic-score conditioning: diffusers' defaults, and AUTOMATIC1111's "SDXL high / low
# aesthetic score" settings, for the prompt and the negative prompt.
AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE = 6.0, 2.5


@dataclass
class Networks:
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoders: list[torch.nn.Module]
    tokenizers: list


class StableDiffusionModel(CodecMethods):
    """SD 1.x / 2.x / XL: UNet + VAE + text encoder(s) run by the studio's samplers."""

    def __init__(
        self, *, name: str, family: str, nets: Networks, schedule: DiscreteSchedule, prediction: str,
        device: torch.device, weights_dtype: torch.dtype, default_size: tuple[int, int],
        zeros_for_empty_negative: bool = False,
    ):
        self.unet, self.vae = nets.unet, nets.vae
        scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        # CFG 7 is what SD 1.x/2.x were tuned for; SDXL's model card and users settle nearer 5-6.
        recommended = Recommended(steps=25, cfg_scale=6.0 if family in XL_FAMILIES else 7.0)
        # Clip skip as AUTOMATIC1111 offers it: SD 1.x and 2.x; SDXL already reads penultimate layers.
        latent_channels = int(self.vae.config.latent_channels)
        # A 9-channel UNet reads the latent, the mask and the masked image's latent (inpainting checkpoints).
        inpainting = int(self.unet.config.in_channels) == 2 * latent_channels + 1
        self.info = ModelInfo(name, family, latent_channels, scale, default_size, scale,
                              recommended=recommended, clip_skip=family not in XL_FAMILIES, inpainting=inpainting)
        self.schedule = schedule
        self.prediction = prediction
        self.device = device
        self.dtype = torch.float32  # the sampler's latents; see the module docstring
        self.weights_dtype = weights_dtype
        self.codec = VaeCodec(self.vae, device, weights_dtype)
        self.steps_offset = 0  # the scheduler config's steps_offset, set by the loader; the runner applies it
        self.control = None  # the running request's ControlNet units (controlnet.ControlState), set by the runner
        # The LoRAs a prompt names are merged into these weights (and taken out exactly); see lora.py.
        self.loras = LoraWeights(self.unet, nets.text_encoders, family, name)
        self.prompts = PromptEncoder(family, nets.text_encoders, nets.tokenizers, device, zeros_for_empty_negative)
        self._denoiser = DiscreteTimeDenoiser(self._network, schedule, prediction)
        self._preview: Callable[[torch.Tensor], np.ndarray] = LinearPreview(family, device)

    # -- conditioning and the network ------------------------------------------------------
    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        with readable_oom("encoding the prompt"):
            cond, uncond = self.prompts.encode(prompt, negative_prompt, clip_skip)
        if self.info.family == "sdxl":
            # SDXL's size conditioning: original size, crop top-left, target size (Podell et al. 2023, sec. 2.2).
            time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32, device=self.device)
            cond["time_ids"] = uncond["time_ids"] = time_ids
        elif self.info.family == "sdxl_refiner":
            # The refiner trades the target size for an aesthetic score: (h, w, crop top, crop left, score).
            def ids(score: float) -> torch.Tensor:
                return torch.tensor([[height, width, 0, 0, score]], dtype=torch.float32, device=self.device)

            cond["time_ids"], uncond["time_ids"] = ids(AESTHETIC_SCORE), ids(NEGATIVE_AESTHETIC_SCORE)
        return cond, uncond

    def tile_cond(self, cond: dict[str, torch.Tensor], box: tuple[int, int, int, int],
                  size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """A tile's cond for tiled diffusion (``box``: top, left, height, width in latent cells of a latent of
        ``size``). SDXL sees the tile as what it was trained on: a crop at (top, left) of a picture of the
        whole size, of the tile's size (its time ids: original size, crop corner, target size or score)."""
        if "time_ids" not in cond:
            return cond
        s = self.info.latent_scale
        ids = cond["time_ids"].clone()
        ids[:, 2], ids[:, 3] = box[0] * s, box[1] * s
        if ids.shape[1] == 6:  # the base model's target size; the refiner's fifth id is its aesthetic score
            ids[:, 4], ids[:, 5] = box[2] * s, box[3] * s
        return {**cond, "time_ids": ids}

    def use_embeddings(self, files: Sequence[AdapterFile]) -> None:
        """The textual-inversion embedding files a prompt may name (the runner lists them); a new run starts."""
        self.prompts.use_embeddings(files)

    def prompt_infotext(self) -> tuple[tuple[str, str], ...]:
        """What the prompts encoded since ``use_embeddings`` add to the parameters text: A1111's TI hashes."""
        used = list(self.prompts.used_embeddings.values())
        return (("TI hashes", ti_hashes(used)),) if used else ()

    def _network(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        wd = self.weights_dtype
        extra = {}
        if "time_ids" in cond:
            extra["added_cond_kwargs"] = {"text_embeds": cond["pooled"].to(wd), "time_ids": cond["time_ids"].to(wd)}
        x, context = x.to(wd), cond["context"].to(wd)
        with readable_oom(f"a denoising step at {x.shape[-1] * self.info.latent_scale}x"
                           f"{x.shape[-2] * self.info.latent_scale}"):
            if self.control is not None:
                extra.update(self.control.residuals(x, t, context, extra.get("added_cond_kwargs")))
            if "concat" in cond:  # an inpainting UNet: [x_scaled, mask, masked latent]; ControlNets read x alone
                x = torch.cat([x, cond["concat"].to(wd)], dim=1)
            return self.unet(x, t, encoder_hidden_states=context, return_dict=False, **extra)[0]

    def denoiser(self) -> Denoiser:
        return self._denoiser

    def classifier_grad(self) -> ClassifierGrad | None:
        return None

    # -- previews --------------------------------------------------------------------------
    def preview(self, x0: torch.Tensor) -> np.ndarray:
        return self._preview(x0)

    def use_tiny_decoder(self, folder) -> None:
        """Preview with TAESD/TAESDXL weights from a diffusers AutoencoderTiny folder."""
        from .previews import TinyDecoderPreview

        self._preview = TinyDecoderPreview(folder, self.device, self.weights_dtype)
