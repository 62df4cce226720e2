"""Flux.1 (dev, schnell, Fill) behind the engine's model interface.

The transformer is diffusers' FluxTransformer2DModel; the studio calls it the way FluxPipeline does:
16-channel latents cut into 2x2 patches (64 numbers per token), rotary positions (row, column) per
image token and zeros for the text tokens, t in [0, 1] as the timestep (the network multiplies by
1000 itself), and for dev and Fill the distilled guidance strength as an input. Sampling, true CFG,
inpainting and branching are the engine's.

Files: a diffusers folder, BFL's single files (with their text encoders and ae.safetensors given
apart, as ComfyUI keeps them), ComfyUI's all-in-one checkpoints; see ``load_flux``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch

from ...denoisers import Cond
from ...flow import DynamicShift, FlowSchedule
from ..base import Recommended
from ..errors import ModelLoadError
from .flux_files import FLUX_VAE_SCALING, FLUX_VAE_SHIFT, FluxParts, read_flux_parts
from .flux_layout import flux_variant
from .flux_prompts import T5_LENGTH, FluxPromptEncoder
from .model import FlowModel
from .parts import ModelFiles

FLUX_DYNAMIC_SHIFT = DynamicShift(base_shift=0.5, max_shift=1.15, base_tokens=256, max_tokens=4096)
# The model cards' settings: dev 20-28 steps at distilled guidance 3.5, schnell 4 steps, Fill guidance 30.
RECOMMENDED = {"dev": Recommended(steps=20, cfg_scale=1.0, distilled_cfg=3.5),
               "schnell": Recommended(steps=4, cfg_scale=1.0),
               "fill": Recommended(steps=28, cfg_scale=1.0, distilled_cfg=30.0)}
LABELS = {"dev": "Flux.1 dev", "schnell": "Flux.1 schnell", "fill": "Flux.1 Fill"}
FILL_KEY = "fill"  # cond entry of Flux Fill: [1, 16 + 64, h, w], the masked image's latent and the 8x8 mask


def pack(x: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, (h/2)(w/2), 4C]: each 2x2 patch is one token, channels outermost (as FluxPipeline)."""
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The inverse of ``pack`` for a latent of h x w."""
    b, _, d = tokens.shape
    c = d // 4
    return tokens.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def image_positions(h: int, w: int, device: torch.device) -> torch.Tensor:
    """[(h/2)(w/2), 3] rotary positions of the image tokens: (0, row, column)."""
    ids = torch.zeros(h // 2, w // 2, 3)
    ids[..., 1] = torch.arange(h // 2)[:, None]
    ids[..., 2] = torch.arange(w // 2)[None, :]
    return ids.reshape(-1, 3).to(device)


class FluxModel(FlowModel):
    """A Flux.1 transformer, its two text encoders and its VAE."""

    def __init__(self, parts: FluxParts, *, name: str, variant: str, schedule: FlowSchedule, device: torch.device,
                 weights_dtype: torch.dtype, vae_scaling: float, vae_shift: float):
        super().__init__(name=name, family="flux", vae=parts.vae, schedule=schedule, device=device,
                         weights_dtype=weights_dtype, default_size=(1024, 1024), recommended=RECOMMENDED[variant],
                         scaling_factor=vae_scaling, shift_factor=vae_shift, preview="flux",
                         distilled_guidance=bool(parts.transformer.config.guidance_embeds),
                         inpainting=variant == "fill")
        self.transformer = parts.transformer
        self.variant = variant
        self.prompts = FluxPromptEncoder(parts.clip, parts.t5, max_length=T5_LENGTH[variant],
                                         clip_tokenizer=parts.clip_tokenizer, t5_tokenizer=parts.t5_tokenizer)
        self._encoded: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()

    def _encode(self, prompt: str) -> dict[str, torch.Tensor]:
        """One prompt's conditioning; the last few are kept, since a T5-XXL pass is not cheap."""
        if prompt not in self._encoded:
            self.use("text_encoders")  # only on a miss: a cached prompt leaves the encoders where they are
            self._encoded[prompt] = self.prompts.encode(prompt)
            while len(self._encoded) > 8:
                self._encoded.popitem(last=False)
        self._encoded.move_to_end(prompt)
        return dict(self._encoded[prompt])

    def encode_prompt(self, prompt: str, negative_prompt: str, width: int, height: int,
                      clip_skip: int = 1) -> tuple[Cond, Cond]:
        return self._encode(prompt), self._encode(negative_prompt)

    def memory_groups(self) -> dict[str, list[torch.nn.Module]]:
        return {"text_encoders": [self.prompts.clip, self.prompts.t5], "transformer": [self.transformer],
                "vae": [self.codec.vae]}

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        b, _, h, w = x.shape
        wd = self.weights_dtype
        tokens = pack(x)
        if self.info.inpainting:
            tokens = torch.cat([tokens, pack(cond[FILL_KEY].expand(b, -1, -1, -1))], dim=-1)
        context = cond["context"].expand(b, -1, -1)
        guidance = None
        if self.info.distilled_guidance:
            guidance = cond["guidance"].to(x.device, wd).expand(b)
        out = self.transformer(
            hidden_states=tokens.to(wd), encoder_hidden_states=context.to(wd),
            pooled_projections=cond["pooled"].expand(b, -1).to(wd), timestep=t.to(wd), guidance=guidance,
            img_ids=image_positions(h, w, x.device), txt_ids=torch.zeros(context.shape[1], 3, device=x.device),
            return_dict=False)[0]
        return unpack(out.float(), h, w)

    def inpainting_concat(self, mask: torch.Tensor, masked: torch.Tensor,
                          image: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Flux Fill's extra input from the binary pixel mask [1, 1, H, W] and the masked image [1, 3, H, W]
        (the whole ``image`` is not read: Fill sees only what the mask leaves)."""
        from .flux_fill import fill_conditioning

        return {FILL_KEY: fill_conditioning(self, mask, masked)}


def _flux_schedule(variant: str, scheduler_config: dict | None) -> FlowSchedule:
    """dev / Fill: the resolution-dependent shift (from the folder's scheduler config when there is one);
    schnell: no shift."""
    cfg = scheduler_config or {}
    dynamic = cfg.get("use_dynamic_shifting", variant != "schnell")
    if not dynamic:
        return FlowSchedule(shift=float(cfg.get("shift", 1.0)) if scheduler_config else 1.0)
    try:
        return FlowSchedule(dynamic=DynamicShift(
            base_shift=float(cfg.get("base_shift", 0.5)), max_shift=float(cfg.get("max_shift", 1.15)),
            base_tokens=int(cfg.get("base_image_seq_len", 256)), max_tokens=int(cfg.get("max_image_seq_len", 4096))))
    except (TypeError, ValueError):
        raise ModelLoadError("the scheduler config's shift settings are not numbers; download the model again") \
            from None


def load_flux(files: ModelFiles, device: torch.device, dtype: torch.dtype) -> FluxModel:
    """Flux.1 from a diffusers folder, an all-in-one checkpoint, or a transformer file with its encoders and VAE."""
    device = torch.device(device)
    parts = read_flux_parts(files, dtype)
    config = dict(parts.transformer.config)
    variant = flux_variant(config)
    if variant == "control":
        raise ModelLoadError(f"{files.display_name} is Flux.1 Canny or Depth (it takes a control image), which the "
                             "studio does not run yet; it runs Flux.1 dev, schnell and Fill")
    scaling = float(getattr(parts.vae.config, "scaling_factor", FLUX_VAE_SCALING) or FLUX_VAE_SCALING)
    shift = float(getattr(parts.vae.config, "shift_factor", FLUX_VAE_SHIFT) or 0.0)
    for module in (parts.transformer, parts.vae, parts.clip, parts.t5):  # in CPU memory until ``place``
        module.to(dtype).eval().requires_grad_(False)
    name = files.name or f"{files.display_name} ({LABELS[variant]})"
    return FluxModel(parts, name=name, variant=variant, schedule=_flux_schedule(variant, parts.scheduler_config),
                     device=device, weights_dtype=dtype, vae_scaling=scaling, vae_shift=shift)
