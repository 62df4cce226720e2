"""SD 3.x's MMDiT: Stability's original weight names <-> diffusers' SD3Transformer2DModel, and its config from shapes.

Stability's checkpoints (sd3_medium*.safetensors, sd3.5_large*.safetensors, sd3.5_medium.safetensors, and
ComfyUI's models/diffusion_models copies of them) name the transformer as the reference MMDiT code does:
``joint_blocks.{i}.x_block`` (the image stream) and ``.context_block`` (the text stream), each attention
with one fused ``qkv`` weight, ``adaLN_modulation.1`` for the modulation, ``mlp.fc1/fc2``. SD 3.5 Medium's
MMDiT-X adds a second self-attention on the image stream (``x_block.attn2``) in its first blocks.

Two differences beyond names: q, k and v are fused along the output dimension, and the modulations of
the final layer and of the last block's text stream (which only feeds attention, so it has no
projection or MLP) are stored as (shift, scale) where diffusers' AdaLayerNormContinuous wants
(scale, shift).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

# (diffusers prefix, original prefix) outside the blocks
_TOP = (
    ("pos_embed.pos_embed", "pos_embed"),
    ("pos_embed.proj.", "x_embedder.proj."),
    ("time_text_embed.timestep_embedder.linear_1.", "t_embedder.mlp.0."),
    ("time_text_embed.timestep_embedder.linear_2.", "t_embedder.mlp.2."),
    ("time_text_embed.text_embedder.linear_1.", "y_embedder.mlp.0."),
    ("time_text_embed.text_embedder.linear_2.", "y_embedder.mlp.2."),
    ("context_embedder.", "context_embedder."),
    ("proj_out.", "final_layer.linear."),
    ("norm_out.linear.", "final_layer.adaLN_modulation.1."),
)
# (diffusers suffix, original suffix) inside block i: transformer_blocks.{i}. <-> joint_blocks.{i}.
_BLOCK = (
    ("attn.to_out.0.", "x_block.attn.proj."),
    ("attn.to_add_out.", "context_block.attn.proj."),
    ("attn.norm_q.", "x_block.attn.ln_q."),
    ("attn.norm_k.", "x_block.attn.ln_k."),
    ("attn.norm_added_q.", "context_block.attn.ln_q."),
    ("attn.norm_added_k.", "context_block.attn.ln_k."),
    ("attn2.to_out.0.", "x_block.attn2.proj."),
    ("attn2.norm_q.", "x_block.attn2.ln_q."),
    ("attn2.norm_k.", "x_block.attn2.ln_k."),
    ("norm1.linear.", "x_block.adaLN_modulation.1."),
    ("norm1_context.linear.", "context_block.adaLN_modulation.1."),
    ("ff.net.0.proj.", "x_block.mlp.fc1."),
    ("ff.net.2.", "x_block.mlp.fc2."),
    ("ff_context.net.0.proj.", "context_block.mlp.fc1."),
    ("ff_context.net.2.", "context_block.mlp.fc2."),
)
# q, k, v projections (diffusers) fused into one weight (original), in that order
_FUSED = (
    (("attn.to_q.", "attn.to_k.", "attn.to_v."), "x_block.attn.qkv."),
    (("attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."), "context_block.attn.qkv."),
    (("attn2.to_q.", "attn2.to_k.", "attn2.to_v."), "x_block.attn2.qkv."),
)
ORIGINAL_MARKER = "joint_blocks.0.x_block.attn.qkv.weight"
DIFFUSERS_MARKER = "transformer_blocks.0.attn.to_q.weight"
ATTENTION_HEAD_DIM = 64  # every released MMDiT: hidden size = 64 * depth, one head per block of depth


def swap_halves(t: torch.Tensor) -> torch.Tensor:
    """(shift, scale) <-> (scale, shift) along the output dimension; its own inverse."""
    a, b = t.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def _block_count(keys, head: str) -> int:
    found = {int(k.split(".")[1]) for k in keys if k.startswith(head)}
    return max(found) + 1 if found else 0


def _pre_only(state: Mapping[str, torch.Tensor], block: str, mlp: str) -> bool:
    """Whether a block's text stream is 'pre only' (the last block: attention input, no projection, no MLP)."""
    return not any(k.startswith(block + mlp) for k in state)


def original_to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stability's MMDiT names (without the model.diffusion_model. prefix) -> SD3Transformer2DModel's.

    Keys the table does not know are left out; the loader's strict load names what is missing."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("joint_blocks."):
            continue
        for dst, src in _TOP:
            if key == src or (src.endswith(".") and key.startswith(src)):
                if dst.startswith("norm_out."):
                    value = swap_halves(value)
                out[dst + key[len(src):]] = value
                break
    for i in range(_block_count(state, "joint_blocks.")):
        src_head, dst_head = f"joint_blocks.{i}.", f"transformer_blocks.{i}."
        pre_only = _pre_only(state, src_head, "context_block.mlp.")
        for key, value in state.items():
            if not key.startswith(src_head):
                continue
            rest = key[len(src_head):]
            for names, fused in _FUSED:
                if rest.startswith(fused):
                    kind = rest[len(fused):]
                    for name, part in zip(names, value.chunk(3, dim=0), strict=True):
                        out[dst_head + name + kind] = part
                    break
            else:
                for dst, src in _BLOCK:
                    if rest.startswith(src):
                        if pre_only and src.startswith("context_block.adaLN"):
                            value = swap_halves(value)
                        out[dst_head + dst + rest[len(src):]] = value
                        break
    return out


def diffusers_to_original(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SD3Transformer2DModel's names -> Stability's (the inverse of ``original_to_diffusers``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("transformer_blocks."):
            continue
        for src, dst in _TOP:
            if key == src or (src.endswith(".") and key.startswith(src)):
                if src.startswith("norm_out."):
                    value = swap_halves(value)
                out[dst + key[len(src):]] = value
                break
        else:
            raise KeyError(f"no original-layout name for SD3 transformer weight {key}")
    for i in range(_block_count(state, "transformer_blocks.")):
        src_head, dst_head = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        block = {k[len(src_head):]: v for k, v in state.items() if k.startswith(src_head)}
        pre_only = _pre_only(block, "", "ff_context.")
        for names, fused in _FUSED:
            for kind in ("weight", "bias"):
                parts = [block.pop(name + kind, None) for name in names]
                if all(p is not None for p in parts):
                    out[dst_head + fused + kind] = torch.cat(parts, dim=0)
        for rest, value in block.items():
            for src, dst in _BLOCK:
                if rest.startswith(src):
                    if pre_only and src.startswith("norm1_context."):
                        value = swap_halves(value)
                    out[dst_head + dst + rest[len(src):]] = value
                    break
            else:
                raise KeyError(f"no original-layout name for SD3 transformer weight {src_head}{rest}")
    return out


def config_from_diffusers_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict:
    """SD3Transformer2DModel's config from a diffusers-named state dict's shapes (no file downloaded).

    The head width is visible only through the q/k norms (SD 3.5); without them it is 64, as in every
    released MMDiT."""
    hidden, joint = shapes["context_embedder.weight"]
    proj = shapes["pos_embed.proj.weight"]  # [hidden, in_channels, p, p]
    patch = proj[2]
    norm_q = shapes.get("transformer_blocks.0.attn.norm_q.weight")
    head_dim = norm_q[0] if norm_q else ATTENTION_HEAD_DIM
    positions = shapes["pos_embed.pos_embed"][1]
    max_size = math.isqrt(positions)
    if max_size * max_size != positions:
        raise ValueError(f"the position embedding has {positions} entries, not a square grid")
    if hidden % head_dim:
        raise ValueError(f"the transformer's width {hidden} is not a multiple of its head width {head_dim}")
    qk_norm = None
    if norm_q:
        qk_norm = "layer_norm" if "transformer_blocks.0.attn.norm_q.bias" in shapes else "rms_norm"
    layers = _block_count(shapes, "transformer_blocks.")
    dual = tuple(i for i in range(layers) if f"transformer_blocks.{i}.attn2.to_q.weight" in shapes)
    return {
        "sample_size": 128, "patch_size": patch, "in_channels": proj[1], "num_layers": layers,
        "attention_head_dim": head_dim, "num_attention_heads": hidden // head_dim, "joint_attention_dim": joint,
        "caption_projection_dim": hidden,
        "pooled_projection_dim": shapes["time_text_embed.text_embedder.linear_1.weight"][1],
        "out_channels": shapes["proj_out.weight"][0] // (patch * patch), "pos_embed_max_size": max_size,
        "dual_attention_layers": dual, "qk_norm": qk_norm,
    }
