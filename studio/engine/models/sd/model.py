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
from ...devices import empty_cache, is_out_of_memory
from ...schedules import DiscreteSchedule
from ..base import ClassifierGrad, ModelInfo, Recommended, image_to_unit, unit_to_image
from . import XL_FAMILIES
from .adapter_files import AdapterFile
from .embeddings import ti_hashes
from .lora import LoraWeights
from .previews import LinearPreview
from .prompts import PromptEncoder

TILE_ABOVE_PIXELS = 1536 * 1536  # decode larger images in tiles to bound VAE memory
# The refiner's aesthetic-score conditioning: diffusers' defaults, and AUTOMATIC1111's "SDXL high / low
# aesthetic score" settings, for the prompt and the negative prompt.
AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE = 6.0, 2.5


class SDOutOfMemoryError(RuntimeError):
    """The device ran out of memory; the message says what to try."""


@dataclass
class Networks:
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoders: list[torch.nn.Module]
    tokenizers: list


class StableDiffusionModel:
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
        self.vae_dtype = weights_dtype
        if getattr(self.vae.config, "force_upcast", False) and weights_dtype == torch.float16:
            # The SDXL VAE overflows in fp16 (its config says so): decode in fp32 from the start.
            self.vae.to(torch.float32)
            self.vae_dtype = torch.float32
        self.steps_offset = 0  # the scheduler config's steps_offset, set by the loader; the runner applies it
        self.control = None  # the running request's ControlNet units (controlnet.ControlState), set by the runner
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.shift_factor = float(getattr(self.vae.config, "shift_factor", None) or 0.0)
        # The LoRAs a prompt names are merged into these weights (and taken out exactly); see lora.py.
        self.loras = LoraWeights(self.unet, nets.text_encoders, family, name)
        self.prompts = PromptEncoder(family, nets.text_encoders, nets.tokenizers, device, zeros_for_empty_negative)
        self._denoiser = DiscreteTimeDenoiser(self._network, schedule, prediction)
        self._preview: Callable[[torch.Tensor], np.ndarray] = LinearPreview(family, device)

    # -- conditioning and the network ------------------------------------------------------
    def encode_prompt(
        self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1
    ) -> tuple[Cond, Cond]:
        with _readable_oom("encoding the prompt"):
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
        with _readable_oom(f"a denoising step at {x.shape[-1] * self.info.latent_scale}x"
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

    # -- pixels <-> latents ----------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, image: np.ndarray) -> torch.Tensor:
        return self.encode_unit(image_to_unit(image))

    @torch.no_grad()
    def encode_unit(self, unit: torch.Tensor) -> torch.Tensor:
        """A float [1, 3, H, W] image in [-1, 1] -> latent (the inpainting conditioning's masked image is 0 there,
        a grey no uint8 image holds)."""
        unit = unit.to(self.device, torch.float32)

        def run() -> torch.Tensor:
            return self.vae.encode(unit.to(self.vae_dtype)).latent_dist.mean

        with _readable_oom("encoding the init image"):
            z = self._with_fp32_retry(run)
        return ((z.float() - self.shift_factor) * self.scaling_factor).to(self.dtype)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> np.ndarray:
        z = latent.to(self.device, torch.float32) / self.scaling_factor + self.shift_factor
        pixels = z.shape[-1] * z.shape[-2] * self.info.latent_scale**2

        def run(tiled: bool) -> torch.Tensor:
            zz = z.to(self.vae_dtype)
            if tiled:
                return self.vae.tiled_decode(zz, return_dict=False)[0]
            return self.vae.decode(zz, return_dict=False)[0]

        try:
            image = self._with_fp32_retry(lambda: run(pixels > TILE_ABOVE_PIXELS))
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            if pixels <= TILE_ABOVE_PIXELS // 4:  # small images: tiling would not help
                raise _oom_error("decoding the image", exc) from exc
            empty_cache(self.device)
            with _readable_oom("decoding the image (even in tiles)"):
                image = self._with_fp32_retry(lambda: run(True))
        return unit_to_image(image.float())

    def _with_fp32_retry(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run a VAE call; NaNs in fp16 (the SDXL VAE overflows) -> upcast the VAE to fp32 for good and retry."""
        out = fn()
        if not torch.isfinite(out).all() and self.vae_dtype != torch.float32:
            self.vae.to(torch.float32)
            self.vae_dtype = torch.float32
            out = fn()
        return out

    # -- previews --------------------------------------------------------------------------
    def preview(self, x0: torch.Tensor) -> np.ndarray:
        return self._preview(x0)

    def use_tiny_decoder(self, folder) -> None:
        """Preview with TAESD/TAESDXL weights from a diffusers AutoencoderTiny folder."""
        from .previews import TinyDecoderPreview

        self._preview = TinyDecoderPreview(folder, self.device, self.weights_dtype)


class _readable_oom:
    """Turn a device out-of-memory error into SDOutOfMemoryError with advice."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, RuntimeError) and not isinstance(exc, SDOutOfMemoryError) \
                and is_out_of_memory(exc):
            raise _oom_error(self.what, exc) from exc
        return False


def _oom_error(what: str, exc: BaseException) -> SDOutOfMemoryError:
    return SDOutOfMemoryError(
        f"out of memory while {what}; try a smaller image size, fp16 weights, or close other programs "
        f"using the GPU ({str(exc).splitlines()[0][:160]})")
