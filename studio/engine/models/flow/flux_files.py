"""Reading Flux.1's parts from the layouts users have, offline.

- a diffusers folder (transformer/, text_encoder/ = CLIP-L, text_encoder_2/ = T5-XXL, vae/, scheduler/,
  tokenizer/, tokenizer_2/);
- ComfyUI's all-in-one checkpoint: ``model.diffusion_model.`` (BFL's names), ``text_encoders.clip_l.transformer.``,
  ``text_encoders.t5xxl.transformer.`` and ``vae.`` (BFL's autoencoder names) in one file;
- a transformer-only file (.safetensors, fp8 included, or .gguf; BFL's release, ComfyUI's
  models/diffusion_models or models/unet; BFL's names or diffusers') with clip_l, t5xxl and the VAE
  (ae.safetensors) as separate files or diffusers folders.
An encoder or VAE named in ModelFiles overrides what the transformer's file or folder holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelLoadError
from ..sd.load import require_sd_libraries
from .encoder_files import assign_weights, clip_text_from_state, t5_encoder_from_state, vae_from_state
from .flux_layout import DIFFUSERS_MARKER, flux_config, flux_to_diffusers, is_original_layout
from .parts import ModelFiles
from .tensors import read_key_shapes, read_state_dict

TRANSFORMER_PREFIX = "model.diffusion_model."
CLIP_PREFIX = "text_encoders.clip_l.transformer."
T5_PREFIX = "text_encoders.t5xxl.transformer."
VAE_PREFIXES = ("vae.", "first_stage_model.")
FLUX_VAE_SCALING, FLUX_VAE_SHIFT = 0.3611, 0.1159  # BFL's autoencoder: latents are (z - shift) * scale


@dataclass
class FluxParts:
    transformer: torch.nn.Module
    clip: torch.nn.Module
    t5: torch.nn.Module
    vae: torch.nn.Module
    clip_tokenizer: object | None = None  # None: the shipped ones
    t5_tokenizer: object | None = None
    scheduler_config: dict | None = None


def read_keys(path: Path) -> list[str]:
    """The tensor names of a weights file, from its header alone."""
    return list(read_key_shapes(path))


def read_weights(path: Path, prefix: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix`` (stripped), in ``dtype`` (fp8 and GGUF upcast)."""
    return read_state_dict(path, prefix=prefix, dtype=dtype)


def read_flux_parts(files: ModelFiles, dtype: torch.dtype) -> FluxParts:
    require_sd_libraries()
    path = Path(files.transformer).expanduser()
    if not path.exists():
        raise ModelLoadError(f"no Flux model at {path}")
    if path.is_dir():
        parts = _from_folder(path, dtype)
        keys: list[str] = []
    else:
        keys = read_keys(path)
        parts = FluxParts(transformer=_transformer_from_file(path, keys, dtype), clip=None, t5=None, vae=None)
    clip_path, t5_path = files.text_encoders.get("clip_l"), files.text_encoders.get("t5xxl")
    if clip_path is not None:
        parts.clip = _clip(Path(clip_path), dtype)
    elif parts.clip is None:
        parts.clip = _inside(path, keys, CLIP_PREFIX, dtype, clip_text_from_state, "clip_l")
    if t5_path is not None:
        parts.t5 = _t5(Path(t5_path), dtype)
    elif parts.t5 is None:
        parts.t5 = _inside(path, keys, T5_PREFIX, dtype, t5_encoder_from_state, "t5xxl")
    if files.vae is not None:
        parts.vae = _vae(Path(files.vae), dtype)
    elif parts.vae is None:
        prefix = next((p for p in VAE_PREFIXES if any(k.startswith(p) for k in keys)), None)
        if prefix is None:
            raise ModelLoadError(f"{path.name} holds no VAE: give Flux's ae.safetensors (ComfyUI's models/vae) "
                                 "with --vae or pick it in the panel")
        parts.vae = _vae_state(read_weights(path, prefix, dtype), path.name)
    return parts


def _inside(path: Path, keys: list[str], prefix: str, dtype, build, role: str) -> torch.nn.Module:
    if not any(k.startswith(prefix) for k in keys):
        what = "CLIP-L (clip_l.safetensors)" if role == "clip_l" else "T5-XXL (t5xxl_fp16.safetensors)"
        raise ModelLoadError(f"{path.name} holds only the diffusion model; Flux also needs its {what} text encoder: "
                             f"put it in ComfyUI's models/text_encoders or give it with --text-encoder")
    return build(read_weights(path, prefix, dtype), f"{path.name} ({role})")


def _transformer_from_file(path: Path, keys: list[str], dtype: torch.dtype) -> torch.nn.Module:
    from diffusers import FluxTransformer2DModel

    prefix = TRANSFORMER_PREFIX if any(k.startswith(TRANSFORMER_PREFIX) for k in keys) else ""
    bare = {k[len(prefix):] for k in keys if k.startswith(prefix)}
    if not is_original_layout(bare) and DIFFUSERS_MARKER not in bare:
        raise ModelLoadError(f"{path.name} is not a Flux.1 transformer (no double_blocks / single_blocks weights)")
    state = read_weights(path, prefix, dtype)
    if is_original_layout(bare):
        state = {k: v for k, v in state.items() if not k.startswith(("text_encoders.", "vae."))}
        try:
            state = flux_to_diffusers(state)
        except KeyError as exc:
            raise ModelLoadError(f"{path.name}: weight {exc.args[0]!r} is not part of a Flux.1 transformer; "
                                 "the file is another model or damaged") from None
    try:
        config = flux_config(state)
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(f"{path.name}: cannot tell the Flux transformer's shape ({exc})") from None
    with torch.device("meta"):
        model = FluxTransformer2DModel(**config)
    return assign_weights(model, state, path.name, "Flux transformer")


def _from_folder(folder: Path, dtype: torch.dtype) -> FluxParts:
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

    def part(sub: str, cls, **kw):
        where = folder / sub
        if not where.is_dir():
            return None
        try:
            return cls.from_pretrained(str(where), local_files_only=True, **kw)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{folder.name}/{sub} could not be read ({str(exc).splitlines()[0][:200]})") \
                from None

    if not (folder / "transformer").is_dir():
        if (folder / "config.json").is_file():  # a lone transformer folder: encoders and VAE come as files
            return FluxParts(transformer=part(".", FluxTransformer2DModel, torch_dtype=dtype), clip=None, t5=None,
                             vae=None)
        raise ModelLoadError(f"{folder} is not a Flux diffusers folder (it has no transformer/ subfolder)")
    return FluxParts(
        transformer=part("transformer", FluxTransformer2DModel, torch_dtype=dtype),
        clip=part("text_encoder", CLIPTextModel, torch_dtype=dtype),
        t5=part("text_encoder_2", T5EncoderModel, torch_dtype=dtype),
        vae=part("vae", AutoencoderKL, torch_dtype=dtype),
        clip_tokenizer=part("tokenizer", CLIPTokenizer), t5_tokenizer=part("tokenizer_2", T5TokenizerFast),
        scheduler_config=_scheduler_config(folder))


def _scheduler_config(folder: Path) -> dict | None:
    path = folder / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is unreadable ({exc}); download the model again") from None
    return cfg if isinstance(cfg, dict) else None


def _weights_of(path: Path, dtype: torch.dtype, prefixes: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """A separate encoder or VAE file's weights, under whichever of ``prefixes`` it uses (or none)."""
    keys = read_keys(path)
    prefix = next((p for p in prefixes if any(k.startswith(p) for k in keys)), "")
    return read_weights(path, prefix, dtype)


def _clip(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    if path.is_dir():
        from transformers import CLIPTextModel

        return CLIPTextModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    return clip_text_from_state(_weights_of(path, dtype, (CLIP_PREFIX, "transformer.")), path.name)


def _t5(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    if path.is_dir():
        from transformers import T5EncoderModel

        return T5EncoderModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    return t5_encoder_from_state(_weights_of(path, dtype, (T5_PREFIX, "transformer.")), path.name)


def _vae(path: Path, dtype: torch.dtype) -> torch.nn.Module:
    if path.is_dir():
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    return _vae_state(_weights_of(path, dtype, VAE_PREFIXES), path.name)


def _vae_state(state: dict[str, torch.Tensor], name: str) -> torch.nn.Module:
    return vae_from_state(state, name, scaling_factor=FLUX_VAE_SCALING, shift_factor=FLUX_VAE_SHIFT)
