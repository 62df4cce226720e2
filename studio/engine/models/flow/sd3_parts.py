"""SD 3.x's networks built from state dicts, their configs read off the weights' shapes (nothing downloaded).

Each part comes as a diffusers / transformers folder, or as a tensor file in any of the layouts people
keep: Stability's all-in-one checkpoints (``model.diffusion_model.``, ``text_encoders.clip_l.transformer.``,
``text_encoders.clip_g.transformer.``, ``text_encoders.t5xxl.transformer.``, ``first_stage_model.``) and
ComfyUI's split files (the same names without the prefixes). What the shapes cannot say comes from the
configs in studio/resources/flow_configs/sd3 (CLIP's activations, the VAE's scaling) or from the rule every
released model follows (64-wide attention heads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from ....resource_files import resource_dir
from ..errors import ModelLoadError
from .sd3_layout import DIFFUSERS_MARKER, ORIGINAL_MARKER, config_from_diffusers_shapes, original_to_diffusers

CONFIGS = resource_dir("flow_configs", "sd3")
TRANSFORMER_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
ENCODER_PREFIXES = {"clip_l": "text_encoders.clip_l.transformer.", "clip_g": "text_encoders.clip_g.transformer.",
                    "t5xxl": "text_encoders.t5xxl.transformer."}
CLIP_HEAD_DIM = 64  # CLIP ViT-L/14's and OpenCLIP bigG's text towers both use 64-wide heads


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _shipped_config(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text())


def _load_into(cls_or_factory, state: Mapping[str, torch.Tensor], what: str, source: str, *,
               all_meta: bool = False) -> torch.nn.Module:
    """Build a module without initialising its weights, then take ``state`` strictly (names what is missing).

    ``all_meta``: its buffers too are built as shapes only, for a module whose buffers all come from the file
    (the MMDiT's position table: 226M numbers for SD 3.5 Medium, computed for nothing otherwise)."""
    from contextlib import nullcontext

    from accelerate import init_empty_weights

    with torch.device("meta") if all_meta else nullcontext(), init_empty_weights(include_buffers=False):
        module = cls_or_factory()
    expected = set(module.state_dict())
    missing = sorted(expected - set(state))
    if missing:
        raise ModelLoadError(f"{source}: the {what} lacks {len(missing)} weights (e.g. {missing[0]}); the file is "
                             f"incomplete or holds another kind of model")
    try:
        module.load_state_dict({k: state[k] for k in expected}, strict=True, assign=True)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[1:2] or [str(exc)]
        raise ModelLoadError(f"{source}: the {what}'s weights do not fit together ({reason[0].strip()[:200]})") from exc
    return module.eval()


# -- the MMDiT -------------------------------------------------------------------------------------------
def transformer_from_state(state: Mapping[str, torch.Tensor], source: str):
    """SD3Transformer2DModel from Stability's names (with or without model.diffusion_model.) or diffusers'."""
    from diffusers import SD3Transformer2DModel

    if any(k.startswith(TRANSFORMER_PREFIX) for k in state):
        state = strip_prefix(state, TRANSFORMER_PREFIX)
    if ORIGINAL_MARKER in state:
        state = original_to_diffusers(state)
    elif DIFFUSERS_MARKER not in state:
        raise ModelLoadError(f"{source} holds no SD 3 transformer (no joint_blocks or transformer_blocks weights)")
    try:
        config = config_from_diffusers_shapes({k: tuple(v.shape) for k, v in state.items()})
    except (KeyError, ValueError, IndexError) as exc:
        raise ModelLoadError(f"{source}: not an SD 3 transformer ({exc})") from exc
    model = _load_into(lambda: SD3Transformer2DModel(**config), state, "SD 3 transformer", source, all_meta=True)
    model.register_to_config(**config)
    return model


# -- text encoders ---------------------------------------------------------------------------------------
def _clip_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' CLIPTextModelWithProjection names, from the names SD 3 files use."""
    out = {}
    for key, value in state.items():
        if key.endswith("position_ids"):
            continue
        if key == "text_projection":  # OpenCLIP stores the projection as a matrix applied on the right
            out["text_projection.weight"] = value.T.contiguous()
        elif key.startswith(("text_model.", "text_projection.")):
            out[key] = value
        else:
            out["text_model." + key] = value
    return out


def clip_from_state(state: Mapping[str, torch.Tensor], role: str, source: str):
    """CLIP-L or CLIP-G (CLIPTextModelWithProjection); a CLIP-L file without a projection gets the identity,
    as ComfyUI gives it (some clip_l files carry only the text tower)."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    s = _clip_state(state)
    token = s.get("text_model.embeddings.token_embedding.weight")
    if token is None:
        raise ModelLoadError(f"{source} holds no CLIP text encoder for {role} (no token embedding)")
    vocab, hidden = token.shape
    if "text_projection.weight" not in s:
        s["text_projection.weight"] = torch.eye(hidden, dtype=token.dtype)
    layers = 1 + max(int(k.split(".")[3]) for k in s if k.startswith("text_model.encoder.layers."))
    config = _shipped_config(f"{role}.json")
    config.update(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                  num_attention_heads=max(1, hidden // CLIP_HEAD_DIM),
                  intermediate_size=s["text_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
                  max_position_embeddings=s["text_model.embeddings.position_embedding.weight"].shape[0],
                  projection_dim=s["text_projection.weight"].shape[0])
    cfg = CLIPTextConfig(**config)
    return _load_into(lambda: CLIPTextModelWithProjection(cfg), s, f"{role} text encoder", source)


def t5_from_state(state: Mapping[str, torch.Tensor], source: str):
    """T5-XXL's encoder (T5EncoderModel); its width, depth, heads and feed-forward read off the weights."""
    from transformers import T5Config, T5EncoderModel

    s = dict(state)
    shared = s.get("shared.weight", s.get("encoder.embed_tokens.weight"))
    bias = s.get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
    if shared is None or bias is None:
        raise ModelLoadError(f"{source} holds no T5 encoder (no token embedding or relative attention bias)")
    s.setdefault("shared.weight", shared)
    s.setdefault("encoder.embed_tokens.weight", shared)
    heads = bias.shape[1]
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in s
    ff = s["encoder.block.0.layer.1.DenseReluDense.wi_0.weight" if gated else
           "encoder.block.0.layer.1.DenseReluDense.wi.weight"].shape[0]
    config = _shipped_config("t5xxl.json")
    config.update(vocab_size=shared.shape[0], d_model=shared.shape[1], num_heads=heads,
                  d_kv=s["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0] // heads, d_ff=ff,
                  num_layers=1 + max(int(k.split(".")[2]) for k in s if k.startswith("encoder.block.")),
                  relative_attention_num_buckets=bias.shape[0], feed_forward_proj="gated-gelu" if gated else "relu")
    cfg = T5Config(**config)
    return _load_into(lambda: T5EncoderModel(cfg), s, "T5-XXL text encoder", source)


# -- the VAE ---------------------------------------------------------------------------------------------
def vae_from_state(state: Mapping[str, torch.Tensor], source: str):
    """The 16-channel AutoencoderKL, from diffusers' names or the original (first_stage_model.) ones."""
    from diffusers import AutoencoderKL

    if any(k.startswith(VAE_PREFIX) for k in state):
        state = strip_prefix(state, VAE_PREFIX)
    config = _shipped_config("vae/config.json")
    if "encoder.down.0.block.0.conv1.weight" in state:  # the original layout: diffusers' own converter renames it
        levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down."))
        per = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down.0.block."))
        widths = [state[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(levels)]
        latent = state["decoder.conv_in.weight"].shape[1]
        config.update(block_out_channels=widths, layers_per_block=per, latent_channels=latent,
                      down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels)
        return _vae_from_original(state, config, source)
    if "encoder.down_blocks.0.resnets.0.conv1.weight" not in state:
        raise ModelLoadError(f"{source} holds no VAE (no encoder.down or encoder.down_blocks weights)")
    levels = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.down_blocks."))
    per = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("encoder.down_blocks.0.resnets."))
    widths = [state[f"encoder.down_blocks.{i}.resnets.0.conv2.weight"].shape[0] for i in range(levels)]
    config.update(block_out_channels=widths, layers_per_block=per,
                  latent_channels=state["decoder.conv_in.weight"].shape[1],
                  down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    return _load_into(lambda: AutoencoderKL(**config), state, "VAE", source)


def _vae_from_original(state: Mapping[str, torch.Tensor], config: dict, source: str):
    import tempfile

    from ..sd.single_file import vae_from_original

    with tempfile.TemporaryDirectory() as folder:  # diffusers' converter reads its config from a folder
        (Path(folder) / "vae").mkdir()
        (Path(folder) / "vae" / "config.json").write_text(json.dumps(config))
        return vae_from_original({VAE_PREFIX + k: v for k, v in state.items()}, Path(folder), source)
