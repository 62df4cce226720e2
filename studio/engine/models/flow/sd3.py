"""Stable Diffusion 3.x (SD 3 Medium, SD 3.5 Large / Large Turbo / Medium) behind the engine's FlowModel.

The MMDiT (diffusers' SD3Transformer2DModel) predicts the velocity noise - x0 at timestep t * 1000 from
the latent, the joint CLIP + T5 context and the pooled CLIP vector (sd3_prompts.py); the schedule is the
fixed shift 3.0 of SD 3's training (read from a diffusers folder's scheduler config when there is one).

``load_sd3`` takes every layout people keep these models in (see ModelFiles): a diffusers folder, one of
Stability's all-in-one checkpoints (with or without the text encoders inside), or ComfyUI's split files
(the diffusion model, clip_l, clip_g, t5xxl and the VAE apart). T5-XXL may be missing: SD 3 then runs on
CLIP-L and CLIP-G alone with zeros for the T5 context, as diffusers' pipeline does without its third
encoder (prompts are followed less closely); ``load_notices`` says so.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from ...denoisers import Cond
from ...flow import FlowSchedule
from ..base import Recommended
from ..errors import ModelLoadError
from .model import FlowModel
from .parts import ModelFiles
from .sd3_parts import (
    CONFIGS,
    ENCODER_PREFIXES,
    VAE_PREFIX,
    clip_from_state,
    t5_from_state,
    transformer_from_state,
    vae_from_state,
)
from .sd3_prompts import SD3PromptEncoder
from .tensors import read_state_dict

log = logging.getLogger(__name__)
DEFAULT_SHIFT = 3.0


@dataclass(frozen=True)
class Variant:
    label: str
    recommended: Recommended


# The published defaults of each model card (diffusers examples): steps and guidance scale. Large Turbo is
# distilled for 4 steps without guidance (its card's guidance_scale=0.0 is CFG off: the studio's 1).
# Named as flow/detect.py names them.
VARIANTS = {
    "3-medium": Variant("SD 3 Medium", Recommended(steps=28, cfg_scale=7.0)),
    "3.5-large": Variant("SD 3.5 Large", Recommended(steps=28, cfg_scale=3.5)),
    "3.5-large-turbo": Variant("SD 3.5 Large Turbo", Recommended(steps=4, cfg_scale=1.0)),
    "3.5-medium": Variant("SD 3.5 Medium", Recommended(steps=40, cfg_scale=4.5)),
    "": Variant("SD 3.x", Recommended(steps=28, cfg_scale=4.5)),
}


def variant_of(transformer, hint: str) -> str:
    """Which SD 3.x model a transformer is, from its shapes; Large Turbo has Large's, so the detected variant or
    the file's name ("sd3.5_large_turbo") tells them apart."""
    cfg = transformer.config
    hint = hint.lower()
    if cfg.dual_attention_layers:
        return "3.5-medium"  # MMDiT-X: only SD 3.5 Medium has the second image-stream attention
    if cfg.num_layers == 38 or "large" in hint or "turbo" in hint:
        return "3.5-large-turbo" if "turbo" in hint else "3.5-large"
    if cfg.num_layers == 24 and cfg.qk_norm is None:
        return "3-medium"
    return ""


class SD3Model(FlowModel):
    def __init__(self, *, transformer, vae, prompts: SD3PromptEncoder, name: str, device: torch.device,
                 weights_dtype: torch.dtype, shift: float, variant: str, notices: tuple[str, ...] = ()):
        super().__init__(
            name=name, family="sd3", vae=vae, schedule=FlowSchedule(shift=shift), device=device,
            weights_dtype=weights_dtype, default_size=(1024, 1024), recommended=VARIANTS[variant].recommended,
            scaling_factor=vae.config.scaling_factor, shift_factor=vae.config.shift_factor or 0.0,
            patch_size=transformer.config.patch_size, preview="sd3")
        self.transformer = transformer
        self.prompts = prompts
        self.variant = variant
        self.load_notices = notices

    def encode_prompt(self, prompt: str, negative_prompt: str, width: int, height: int,
                      clip_skip: int = 1) -> tuple[Cond, Cond]:
        self.use("text_encoders")
        return self.prompts.encode(prompt, negative_prompt)

    def memory_groups(self) -> dict[str, list[torch.nn.Module]]:
        return {"text_encoders": [*self.prompts.clips, self.prompts.t5], "transformer": [self.transformer],
                "vae": [self.codec.vae]}

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        dtype = self.weights_dtype
        v = self.transformer(hidden_states=x.to(dtype), timestep=(t * 1000).to(dtype),
                             encoder_hidden_states=cond["context"].to(dtype),
                             pooled_projections=cond["pooled"].to(dtype), return_dict=False)[0]
        return v.float()


# -- loading ---------------------------------------------------------------------------------------------
def load_sd3(files: ModelFiles, device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> SD3Model:
    """An SD 3.x model from a diffusers folder, an all-in-one checkpoint, or split files; fully offline."""
    from ...devices import pick_device
    from ..sd.load import pick_weights_dtype, require_sd_libraries

    require_sd_libraries()
    dev = pick_device(device)
    wdtype = pick_weights_dtype(dev, dtype)
    path = Path(files.transformer).expanduser()
    if not path.exists():
        raise ModelLoadError(f"no SD 3 model at {path}")
    if path.is_dir():
        nets = _from_folder(path, files, wdtype)
    else:
        nets = _from_file(path, files, wdtype)
    transformer, vae, encoders, tokenizers, shift = nets
    notices = []
    if encoders["t5xxl"] is None:
        notices.append("no T5-XXL text encoder was given: SD 3 runs on CLIP-L and CLIP-G alone (the T5 context is "
                       "zeros, as diffusers' pipeline does without it); prompts are followed less closely. Add "
                       "t5xxl (--text-encoder t5xxl_fp16.safetensors) for the full model.")
    for note in notices:
        log.warning(note)
    variant = variant_of(transformer, f"{files.variant} {files.display_name}")
    for module in (transformer, vae, encoders["clip_l"], encoders["clip_g"], encoders["t5xxl"]):
        if module is not None:  # in CPU memory until ``place`` puts them on the device
            module.to(wdtype).eval().requires_grad_(False)
    if encoders["t5xxl"] is not None and wdtype == torch.float16:
        _keep_t5_outputs_fp32(encoders["t5xxl"])
    prompts = SD3PromptEncoder(encoders["clip_l"], encoders["clip_g"], encoders["t5xxl"], tokenizers,
                               transformer.config.joint_attention_dim, dev)
    name = files.name or f"{files.display_name} ({VARIANTS[variant].label})"
    return SD3Model(transformer=transformer, vae=vae, prompts=prompts, name=name, device=dev, weights_dtype=wdtype,
                    shift=shift, variant=variant, notices=tuple(notices))


def _keep_t5_outputs_fp32(t5: torch.nn.Module) -> None:
    """T5's feed-forward outputs overflow fp16; transformers keeps those layers (``wo``) in fp32, so do we."""
    for name, module in t5.named_modules():
        if name.endswith(".wo"):
            module.float()


def _shift_from(folder: Path | None) -> float:
    cfg_file = (folder or CONFIGS) / "scheduler" / "scheduler_config.json"
    try:
        shift = float(json.loads(cfg_file.read_text()).get("shift", DEFAULT_SHIFT))
    except (OSError, ValueError, TypeError):
        return DEFAULT_SHIFT
    return shift if 0 < shift < 100 else DEFAULT_SHIFT


def _encoder_override(files: ModelFiles, role: str, wdtype: torch.dtype):
    """The encoder file or folder the user gave for ``role``, loaded; None when none was given."""
    given = files.text_encoders.get(role)
    if given is None:
        return None
    given = Path(given).expanduser()
    if given.is_dir():
        return _pretrained_encoder(given, role)
    return _encoder_from_state(read_state_dict(given, dtype=wdtype), role, given.name)


def _encoder_from_state(state, role: str, source: str):
    if role == "t5xxl":
        return t5_from_state(state, source)
    return clip_from_state(state, role, source)


def _pretrained_encoder(folder: Path, role: str):
    from transformers import CLIPTextModelWithProjection, T5EncoderModel

    cls = T5EncoderModel if role == "t5xxl" else CLIPTextModelWithProjection
    try:
        return cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder.name}: could not load the {role} text encoder ({str(exc).splitlines()[0]})") \
            from exc


def _vae_override(files: ModelFiles, wdtype: torch.dtype):
    if files.vae is None:
        return None
    path = Path(files.vae).expanduser()
    if path.is_dir():
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(str(path), local_files_only=True)
    return vae_from_state(read_state_dict(path, dtype=wdtype), path.name)


def _missing_clip(role: str, source: str) -> ModelLoadError:
    return ModelLoadError(f"{source} has no {role} text encoder inside: SD 3 needs CLIP-L and CLIP-G. Put "
                          f"clip_l.safetensors and clip_g.safetensors in models/text_encoders (or models/clip), or "
                          f"give them with --text-encoder")


def _from_file(path: Path, files: ModelFiles, wdtype: torch.dtype):
    state = read_state_dict(path, dtype=wdtype)
    transformer = transformer_from_state(state, path.name)
    encoders = {}
    for role, prefix in ENCODER_PREFIXES.items():
        encoder = _encoder_override(files, role, wdtype)
        if encoder is None:
            inside = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            encoder = _encoder_from_state(inside, role, path.name) if inside else None
        if encoder is None and role != "t5xxl":
            raise _missing_clip(role, path.name)
        encoders[role] = encoder
    vae = _vae_override(files, wdtype)
    if vae is None:
        inside = {k: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
        if not inside:
            raise ModelLoadError(f"{path.name} has no VAE inside: put the SD 3 VAE (diffusion_pytorch_model."
                                 f"safetensors or sd3_vae.safetensors) in models/vae, or give it with --vae")
        vae = vae_from_state(inside, path.name)
    del state
    return transformer, vae, encoders, shipped_tokenizers(), _shift_from(None)


def _from_folder(folder: Path, files: ModelFiles, wdtype: torch.dtype):
    from diffusers import AutoencoderKL, SD3Transformer2DModel

    if not (folder / "transformer").is_dir():
        raise ModelLoadError(f"{folder} is not a diffusers SD 3 folder (it has no transformer/ subfolder)")
    try:
        transformer = SD3Transformer2DModel.from_pretrained(str(folder), subfolder="transformer",
                                                            local_files_only=True)
        vae = _vae_override(files, wdtype) or AutoencoderKL.from_pretrained(str(folder), subfolder="vae",
                                                                            local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{folder.name}: could not load its weights ({str(exc).splitlines()[0]})") from exc
    encoders = {}
    for role, sub in (("clip_l", "text_encoder"), ("clip_g", "text_encoder_2"), ("t5xxl", "text_encoder_3")):
        encoder = _encoder_override(files, role, wdtype)
        if encoder is None and (folder / sub / "config.json").is_file():
            encoder = _pretrained_encoder(folder / sub, role)
        if encoder is None and role != "t5xxl":
            raise _missing_clip(role, folder.name)
        encoders[role] = encoder
    return transformer, vae, encoders, folder_tokenizers(folder), _shift_from(folder)


@lru_cache(maxsize=1)
def shipped_tokenizers() -> tuple:
    """CLIP-L's, CLIP-G's (the same vocabulary, padded with "!") and T5's, from resources/, offline (read once:
    building them from their files takes seconds)."""
    from transformers import CLIPTokenizer

    from ..sd.load import SHARED_TOKENIZER
    from .t5_tokenizer import load_t5_tokenizer

    clip_l = CLIPTokenizer.from_pretrained(str(SHARED_TOKENIZER), local_files_only=True, pad_token="<|endoftext|>")
    clip_g = CLIPTokenizer.from_pretrained(str(SHARED_TOKENIZER), local_files_only=True, pad_token="!")
    return clip_l, clip_g, load_t5_tokenizer()


def folder_tokenizers(folder: Path) -> tuple:
    """A diffusers folder's own tokenizers where it has them, the shipped ones where not."""
    from transformers import AutoTokenizer

    out = []
    for i, sub in enumerate(("tokenizer", "tokenizer_2", "tokenizer_3")):
        own = None
        if (folder / sub / "tokenizer_config.json").is_file():
            try:
                own = AutoTokenizer.from_pretrained(str(folder / sub), local_files_only=True)
            except (OSError, ValueError):
                log.warning("%s/%s could not be read; using the shipped tokenizer", folder.name, sub)
        out.append(own if own is not None else shipped_tokenizers()[i])
    return tuple(out)
