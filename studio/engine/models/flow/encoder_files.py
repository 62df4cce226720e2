"""Text encoders and VAEs of the flow families built from weights alone: the config is read from shapes.

The files users keep (ComfyUI's models/text_encoders/clip_l.safetensors, t5xxl_fp16.safetensors, the
``text_encoders.clip_l.transformer.`` / ``text_encoders.t5xxl.transformer.`` parts of all-in-one
checkpoints) hold transformers' own names for CLIPTextModel and T5EncoderModel, so only the config has
to be found: widths, depth and head counts follow from the weights' shapes. VAEs come in the original
(LDM) layout (BFL's ae.safetensors, ``vae.`` / ``first_stage_model.`` inside checkpoints) or diffusers'.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import ModelLoadError
from ..sd.original_layout import vae_to_original
from ..sd.single_file import materialize_buffers

CLIP_HEAD_DIM = 64  # OpenAI's CLIP-L (768 wide, 12 heads) and OpenCLIP bigG (1280, 20)


def _count(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    found = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(found) + 1 if found else 0


def assign_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], name: str,
                   part: str) -> torch.nn.Module:
    """Load ``weights`` into a meta-device model by assignment; every parameter must be there, shapes equal."""
    target = model.state_dict()
    missing = [k for k in target if k not in weights and not k.endswith("position_ids")]
    if missing:
        raise ModelLoadError(f"{name}: the {part} lacks {len(missing)} weights (e.g. {missing[0]}); the file is "
                             "incomplete or of another layout")
    for k, v in target.items():
        if k in weights and tuple(weights[k].shape) != tuple(v.shape):
            raise ModelLoadError(f"{name}: {part} weight {k} has shape {tuple(weights[k].shape)}, expected "
                                 f"{tuple(v.shape)}")
    model.load_state_dict({k: weights[k] for k in target if k in weights}, strict=False, assign=True)
    materialize_buffers(model)
    return model.eval()


def clip_text_from_state(state: Mapping[str, torch.Tensor], name: str) -> torch.nn.Module:
    """A transformers CLIPTextModel (pooled output used) from its weights, with or without ``text_model.``."""
    from transformers import CLIPTextConfig, CLIPTextModel

    weights = {k.removeprefix("text_model."): v for k, v in state.items()}
    try:
        vocab, hidden = weights["embeddings.token_embedding.weight"].shape
        positions = weights["embeddings.position_embedding.weight"].shape[0]
        ff = weights["encoder.layers.0.mlp.fc1.weight"].shape[0]
    except KeyError as exc:
        raise ModelLoadError(f"{name}: not a CLIP text encoder ({exc.args[0]!r} is missing)") from None
    config = CLIPTextConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=ff,
                            num_hidden_layers=_count(weights, "encoder.layers."),
                            num_attention_heads=max(1, hidden // CLIP_HEAD_DIM), max_position_embeddings=positions,
                            hidden_act="quick_gelu", projection_dim=hidden, bos_token_id=49406, eos_token_id=49407,
                            pad_token_id=49407)
    with torch.device("meta"):
        model = CLIPTextModel(config)
    if any(k.startswith("text_model.") for k in model.state_dict()):  # transformers < 5.6 nests text_model
        weights = {"text_model." + k: v for k, v in weights.items()}
    return assign_weights(model, weights, name, "CLIP text encoder")


def t5_encoder_from_state(state: Mapping[str, torch.Tensor], name: str) -> torch.nn.Module:
    """A transformers T5EncoderModel (T5 v1.1: gated GELU, no biases) from its weights."""
    from transformers import T5Config, T5EncoderModel

    weights = dict(state)
    if "shared.weight" not in weights and "encoder.embed_tokens.weight" in weights:
        weights["shared.weight"] = weights["encoder.embed_tokens.weight"]
    try:
        vocab, d_model = weights["shared.weight"].shape
        inner = weights["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
        buckets, heads = weights["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape
        d_ff = weights["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
    except KeyError as exc:
        raise ModelLoadError(f"{name}: not a T5 v1.1 encoder ({exc.args[0]!r} is missing)") from None
    config = T5Config(vocab_size=vocab, d_model=d_model, d_kv=inner // heads, d_ff=d_ff, num_heads=heads,
                      num_layers=_count(weights, "encoder.block."), relative_attention_num_buckets=buckets,
                      feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False,
                      tie_word_embeddings=False)
    with torch.device("meta"):
        model = T5EncoderModel(config)
    weights.setdefault("encoder.embed_tokens.weight", weights["shared.weight"])
    return assign_weights(model, weights, name, "T5 encoder")


def vae_from_state(state: Mapping[str, torch.Tensor], name: str, *, scaling_factor: float,
                   shift_factor: float) -> torch.nn.Module:
    """diffusers' AutoencoderKL from weights in diffusers' names or the original (LDM) ones.

    The original names are found by mapping the model's own names with ``vae_to_original``, so one table
    serves both directions."""
    from diffusers import AutoencoderKL

    original = "encoder.conv_in.weight" in state and "encoder.down.0.block.0.conv1.weight" in state
    down = "encoder.down.{}.block.0.conv1.weight" if original else "encoder.down_blocks.{}.resnets.0.conv1.weight"
    try:
        levels = _count(state, "encoder.down." if original else "encoder.down_blocks.")
        widths = tuple(int(state[down.format(i)].shape[0]) for i in range(levels))
        per_block = _count(state, "encoder.down.0.block." if original else "encoder.down_blocks.0.resnets.")
        latent = int(state["encoder.conv_out.weight"].shape[0]) // 2
    except KeyError as exc:
        raise ModelLoadError(f"{name}: not a VAE ({exc.args[0]!r} is missing)") from None
    if not levels:
        raise ModelLoadError(f"{name}: not a VAE (no encoder blocks)")
    quant = "quant_conv.weight" in state
    config = dict(in_channels=3, out_channels=3, latent_channels=latent, block_out_channels=widths,
                  down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
                  layers_per_block=per_block, norm_num_groups=32,  # every released SD / SD3 / Flux VAE
                  scaling_factor=scaling_factor, shift_factor=shift_factor, use_quant_conv=quant,
                  use_post_quant_conv=quant, force_upcast=False)
    with torch.device("meta"):
        model = AutoencoderKL(**config)
    target = model.state_dict()
    if original:
        names = vae_to_original({k: v for k, v in target.items()}, config)
        weights = {}
        for ours, theirs in zip(target, names, strict=True):
            bare = theirs.split(".", 1)[1] if theirs.startswith("first_stage_model.") else theirs
            if bare in state:
                weights[ours] = state[bare].reshape(target[ours].shape)
    else:
        weights = dict(state)
    return assign_weights(model, weights, name, "VAE")
