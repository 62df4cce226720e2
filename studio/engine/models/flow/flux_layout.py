"""Flux.1's transformer: Black Forest Labs' original weight names <-> diffusers' FluxTransformer2DModel.

BFL's files (flux1-dev.safetensors, flux1-schnell.safetensors, flux1-fill-dev.safetensors, and ComfyUI's
copies in models/diffusion_models or, under ``model.diffusion_model.``, inside all-in-one checkpoints) name
the network as BFL's reference code does: ``double_blocks.{i}`` (image and text streams, each attention
with one fused ``qkv``), ``single_blocks.{i}`` (one ``linear1`` holding q, k, v and the MLP's input
projection side by side, ``linear2`` their joint output), ``time_in`` / ``vector_in`` / ``guidance_in``
embedders. Two differences beyond names: the fused weights are split along the output dimension, and
the final layer's modulation is stored as (shift, scale) where diffusers' AdaLayerNormContinuous wants
(scale, shift).

The config is read from the shapes alone (``flux_config``), so nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# (diffusers prefix, original prefix) outside the blocks
_TOP = (
    ("time_text_embed.timestep_embedder.linear_1.", "time_in.in_layer."),
    ("time_text_embed.timestep_embedder.linear_2.", "time_in.out_layer."),
    ("time_text_embed.text_embedder.linear_1.", "vector_in.in_layer."),
    ("time_text_embed.text_embedder.linear_2.", "vector_in.out_layer."),
    ("time_text_embed.guidance_embedder.linear_1.", "guidance_in.in_layer."),
    ("time_text_embed.guidance_embedder.linear_2.", "guidance_in.out_layer."),
    ("context_embedder.", "txt_in."),
    ("x_embedder.", "img_in."),
    ("proj_out.", "final_layer.linear."),
    ("norm_out.linear.", "final_layer.adaLN_modulation.1."),  # (scale, shift) <-> (shift, scale)
)
# (diffusers suffix, original suffix) inside transformer_blocks.{i}. <-> double_blocks.{i}.
_DOUBLE = (
    ("norm1.linear.", "img_mod.lin."),
    ("norm1_context.linear.", "txt_mod.lin."),
    ("attn.norm_q.weight", "img_attn.norm.query_norm.scale"),
    ("attn.norm_k.weight", "img_attn.norm.key_norm.scale"),
    ("attn.norm_added_q.weight", "txt_attn.norm.query_norm.scale"),
    ("attn.norm_added_k.weight", "txt_attn.norm.key_norm.scale"),
    ("attn.to_out.0.", "img_attn.proj."),
    ("attn.to_add_out.", "txt_attn.proj."),
    ("ff.net.0.proj.", "img_mlp.0."),
    ("ff.net.2.", "img_mlp.2."),
    ("ff_context.net.0.proj.", "txt_mlp.0."),
    ("ff_context.net.2.", "txt_mlp.2."),
)
_DOUBLE_FUSED = (
    (("attn.to_q.", "attn.to_k.", "attn.to_v."), "img_attn.qkv."),
    (("attn.add_q_proj.", "attn.add_k_proj.", "attn.add_v_proj."), "txt_attn.qkv."),
)
# inside single_transformer_blocks.{i}. <-> single_blocks.{i}.
_SINGLE = (
    ("norm.linear.", "modulation.lin."),
    ("attn.norm_q.weight", "norm.query_norm.scale"),
    ("attn.norm_k.weight", "norm.key_norm.scale"),
    ("proj_out.", "linear2."),
)
_SINGLE_FUSED = (("attn.to_q.", "attn.to_k.", "attn.to_v.", "proj_mlp."), "linear1.")

ORIGINAL_MARKERS = ("double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight")
DIFFUSERS_MARKER = "x_embedder.weight"
_BLOCK = re.compile(r"^(double_blocks|single_blocks|transformer_blocks|single_transformer_blocks)\.(\d+)\.(.*)$")


def is_original_layout(keys) -> bool:
    return any(k in keys for k in ORIGINAL_MARKERS)


def _swap_halves(t: torch.Tensor) -> torch.Tensor:
    first, second = t.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _rename(rest: str, table, *, to_original: bool) -> str | None:
    for ours, theirs in table:
        src, dst = (ours, theirs) if to_original else (theirs, ours)
        if rest.startswith(src):
            return dst + rest[len(src):]
    return None


def flux_to_diffusers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BFL's names -> FluxTransformer2DModel's. Raises KeyError naming a weight it does not know."""
    inner = state["img_in.weight"].shape[0]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        # ComfyUI saved some files with its RMSNorm's ``weight`` where BFL's code has ``scale``
        key = key.replace("_norm.weight", "_norm.scale")
        match = _BLOCK.match(key)
        if match is None:
            name = _rename(key, _TOP, to_original=False)
            if name is None:
                raise KeyError(key)
            out[name] = _swap_halves(value) if key.startswith("final_layer.adaLN_modulation.1.") else value
            continue
        kind, i, rest = match.groups()
        if kind == "double_blocks":
            head = f"transformer_blocks.{i}."
            fused = next(((parts, orig) for parts, orig in _DOUBLE_FUSED if rest.startswith(orig)), None)
            if fused is not None:
                kind_ = rest[len(fused[1]):]  # "weight" or "bias"
                for part, chunk in zip(fused[0], value.chunk(3, dim=0), strict=True):
                    out[head + part + kind_] = chunk
                continue
            name = _rename(rest, _DOUBLE, to_original=False)
        elif kind == "single_blocks":
            head = f"single_transformer_blocks.{i}."
            parts, orig = _SINGLE_FUSED
            if rest.startswith(orig):
                sizes = (inner, inner, inner, value.shape[0] - 3 * inner)
                for part, chunk in zip(parts, value.split(sizes, dim=0), strict=True):
                    out[head + part + rest[len(orig):]] = chunk
                continue
            name = _rename(rest, _SINGLE, to_original=False)
        else:
            raise KeyError(key)
        if name is None:
            raise KeyError(key)
        out[head + name] = value
    return out


def flux_to_original(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """FluxTransformer2DModel's names -> BFL's (tests write the original layouts with it)."""
    out: dict[str, torch.Tensor] = {}
    done: set[str] = set()
    for key, value in state.items():
        if key in done:
            continue
        match = _BLOCK.match(key)
        if match is None:
            name = _rename(key, _TOP, to_original=True)
            if name is None:
                raise KeyError(key)
            out[name] = _swap_halves(value) if key.startswith("norm_out.linear.") else value
            continue
        kind, i, rest = match.groups()
        if kind == "transformer_blocks":
            src, dst, table, fused = f"transformer_blocks.{i}.", f"double_blocks.{i}.", _DOUBLE, _DOUBLE_FUSED
        else:
            src, dst, table, fused = f"single_transformer_blocks.{i}.", f"single_blocks.{i}.", _SINGLE, (_SINGLE_FUSED,)
        group = next(((parts, orig) for parts, orig in fused if any(rest.startswith(p) for p in parts)), None)
        if group is not None:
            parts, orig = group
            suffix = next(rest[len(p):] for p in parts if rest.startswith(p))
            names = [src + p + suffix for p in parts]
            out[dst + orig + suffix] = torch.cat([state[n] for n in names], dim=0)
            done.update(names)
            continue
        name = _rename(rest, table, to_original=True)
        if name is None:
            raise KeyError(key)
        out[dst + name] = value
    return out


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """The rotary embedding's split of a head over (text index, row, column): (16, 56, 56) for Flux's 128.

    Smaller test models keep the same proportions (1/8 for the first axis, the rest halved)."""
    first = head_dim // 8
    rest = (head_dim - first) // 2
    axes = (first, rest, head_dim - first - rest)
    if any(a % 2 for a in axes):
        raise ValueError(f"a Flux transformer with {head_dim}-wide attention heads has no known rotary layout")
    return axes


def flux_config(state: Mapping[str, torch.Tensor]) -> dict:
    """FluxTransformer2DModel's config from a diffusers-named state dict's shapes."""
    inner, in_channels = state["x_embedder.weight"].shape
    double = {int(k.split(".")[1]) for k in state if k.startswith("transformer_blocks.")}
    single = {int(k.split(".")[1]) for k in state if k.startswith("single_transformer_blocks.")}
    norm = "transformer_blocks.0.attn.norm_q.weight" if double else "single_transformer_blocks.0.attn.norm_q.weight"
    head_dim = state[norm].shape[0]
    return dict(
        patch_size=1, in_channels=int(in_channels), out_channels=int(state["proj_out.weight"].shape[0]),
        num_layers=len(double), num_single_layers=len(single), attention_head_dim=int(head_dim),
        num_attention_heads=int(inner // head_dim), joint_attention_dim=int(state["context_embedder.weight"].shape[1]),
        pooled_projection_dim=int(state["time_text_embed.text_embedder.linear_1.weight"].shape[1]),
        guidance_embeds="time_text_embed.guidance_embedder.linear_1.weight" in state,
        axes_dims_rope=rope_axes(int(head_dim)),
    )


def flux_variant(config: Mapping) -> str:
    """'fill' (the latent, the masked image's latent and the 8x8 mask: 6x the output width), 'control' (Canny /
    Depth: the control image's latent beside the latent, 2x), 'dev' (a guidance input), 'schnell'."""
    width_in, width_out = config["in_channels"], config.get("out_channels") or config["in_channels"]
    if width_in == 6 * width_out:
        return "fill"
    if width_in == 2 * width_out:
        return "control"
    return "dev" if config.get("guidance_embeds") else "schnell"
