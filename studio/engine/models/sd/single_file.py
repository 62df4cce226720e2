"""Original-layout (CompVis / Stability) single-file checkpoints -> diffusers and transformers modules.

The UNet and VAE go through diffusers' own converters (``from_single_file`` with a
state dict and a local config folder, so nothing is fetched). The text encoders
are mapped here: the OpenCLIP encoders of SD 2.x and SDXL keep their fused q/k/v
weights and, for SD 2.x, one more layer than the model uses (it reads the
penultimate layer), which a strict hand mapping handles more clearly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelLoadError
from .detect import SD1_TEXT, SD2_TEXT, XL_REFINER_TEXT, XL_TEXT_1, XL_TEXT_2


def unet_from_original(state: dict[str, torch.Tensor], config_dir: Path, name: str,
                       in_channels: int | None = None) -> torch.nn.Module:
    """The UNet; ``in_channels`` overrides the config's (9 for an inpainting checkpoint of a 4-channel family)."""
    from diffusers import UNet2DConditionModel

    extra = {} if in_channels is None else {"in_channels": in_channels}
    return _diffusers_component(UNet2DConditionModel, state, config_dir, "unet", name, **extra)


def vae_from_original(state: dict[str, torch.Tensor], config_dir: Path, name: str) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    return _diffusers_component(AutoencoderKL, state, config_dir, "vae", name)


def _diffusers_component(cls, state, config_dir: Path, subfolder: str, name: str, **config) -> torch.nn.Module:
    try:
        model = cls.from_single_file(state, config=str(config_dir), subfolder=subfolder, local_files_only=True,
                                     **config)
    except Exception as exc:  # diffusers raises KeyError, ValueError or its own Exception subclasses here
        reason = str(exc).split(". If you")[0].splitlines()[0][:300]  # diffusers appends long advice that misleads
        if "meta tensor" in reason:  # weights left unfilled by the conversion: they are not in the file
            reason = "some of them are missing: the file is incomplete, or another kind of model"
        raise ModelLoadError(f"{name}: its {subfolder.upper()} weights do not fit the {config_dir.name} layout "
                             f"({reason})") from exc
    missing = [n for n, p in model.named_parameters() if p.is_meta]
    if missing:
        raise ModelLoadError(f"{name}: the checkpoint lacks {len(missing)} {subfolder.upper()} weights "
                             f"(e.g. {missing[0]}); the file is incomplete or not a {config_dir.name} model")
    return model


def text_encoders_from_original(
    state: dict[str, torch.Tensor], family: str, config_dir: Path, name: str
) -> list[torch.nn.Module]:
    """The family's text encoder(s), in the order the UNet's context concatenates them."""
    if family == "sd1":
        return [_clip(_strip(state, SD1_TEXT), config_dir / "text_encoder", name, projection=False)]
    if family == "sd2":
        return [_clip_from_open_clip(state, SD2_TEXT, config_dir / "text_encoder", name, projection=False)]
    if family == "sdxl_refiner":  # OpenCLIP bigG alone, as the base's second encoder
        return [_clip_from_open_clip(state, XL_REFINER_TEXT, config_dir / "text_encoder_2", name, projection=True)]
    return [_clip(_strip(state, XL_TEXT_1), config_dir / "text_encoder", name, projection=False),
            _clip_from_open_clip(state, XL_TEXT_2, config_dir / "text_encoder_2", name, projection=True)]


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if k.startswith(prefix):
            k = k[len(prefix):]
            out[k if k.startswith("text_model.") else "text_model." + k] = v  # very old files lack the level
    return out


def _clip_from_open_clip(state, prefix: str, cfg_dir: Path, name: str, projection: bool) -> torch.nn.Module:
    """OpenCLIP text tower (fused in_proj, c_fc/c_proj names) -> transformers CLIP keys."""
    from transformers import CLIPTextConfig

    layers = CLIPTextConfig.from_pretrained(str(cfg_dir), local_files_only=True).num_hidden_layers
    out: dict[str, torch.Tensor] = {}
    try:
        out["text_model.embeddings.token_embedding.weight"] = state[prefix + "token_embedding.weight"]
        out["text_model.embeddings.position_embedding.weight"] = state[prefix + "positional_embedding"]
        out["text_model.final_layer_norm.weight"] = state[prefix + "ln_final.weight"]
        out["text_model.final_layer_norm.bias"] = state[prefix + "ln_final.bias"]
        if projection:
            out["text_projection.weight"] = state[prefix + "text_projection"].T.contiguous()
        for i in range(layers):  # SD 2.x files hold one more layer than its (penultimate-layer) encoder uses
            src, dst = f"{prefix}transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}."
            for kind in ("weight", "bias"):
                q, k, v = state[f"{src}attn.in_proj_{kind}"].chunk(3, dim=0)
                out[f"{dst}self_attn.q_proj.{kind}"] = q
                out[f"{dst}self_attn.k_proj.{kind}"] = k
                out[f"{dst}self_attn.v_proj.{kind}"] = v
                for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                             ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                    out[f"{dst}{b}.{kind}"] = state[f"{src}{a}.{kind}"]
    except KeyError as exc:
        raise ModelLoadError(f"{name}: the text encoder is incomplete, {exc.args[0]!r} is missing") from exc
    return _clip(out, cfg_dir, name, projection)


def _clip(weights: dict[str, torch.Tensor], cfg_dir: Path, name: str, projection: bool) -> torch.nn.Module:
    """Build a CLIP text model without random init (meta tensors), then take the checkpoint's weights."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig.from_pretrained(str(cfg_dir), local_files_only=True)
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    with torch.device("meta"):
        model = cls(config)
    target = model.state_dict()
    if not any(k.startswith("text_model.") for k in target):  # transformers >= 5.6 flattened CLIPTextModel
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    missing = [k for k in target if k not in weights and not k.endswith("position_ids")]
    if missing:
        raise ModelLoadError(f"{name}: the text encoder lacks {len(missing)} weights (e.g. {missing[0]}); "
                             "the file is incomplete or of another layout")
    for k in target:
        if k in weights and tuple(weights[k].shape) != tuple(target[k].shape):
            raise ModelLoadError(f"{name}: text encoder weight {k} has shape {tuple(weights[k].shape)}, "
                                 f"expected {tuple(target[k].shape)} for this model family")
    # Kept in the file's dtype: the loader casts once, to the device's precision.
    model.load_state_dict({k: weights[k] for k in target if k in weights}, strict=False, assign=True)
    materialize_buffers(model)
    return model.eval()


def materialize_buffers(model: torch.nn.Module) -> None:
    """Recreate the non-persistent buffers (CLIP's position_ids) that a meta-device build leaves empty."""
    for full, buf in list(model.named_buffers()):
        if not buf.is_meta:
            continue
        parent, _, leaf = full.rpartition(".")
        module = model.get_submodule(parent) if parent else model
        if leaf != "position_ids":
            raise ModelLoadError(f"internal: buffer {full} has no value after loading")
        module.register_buffer(leaf, torch.arange(buf.shape[-1]).expand(buf.shape), persistent=False)
