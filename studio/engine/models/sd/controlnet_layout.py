"""ControlNet weight names: the original single-file layout <-> diffusers' ControlNetModel, and its config.

The original layout (lllyasviel's ControlNet, the files in A1111's ``models/ControlNet``) is
the UNet's encoder under ``control_model.``: ``input_blocks``, ``middle_block`` and
``time_embed`` named as in a checkpoint's UNet, plus ``zero_convs.N.0`` (one 1x1
convolution per input block), ``middle_block_out.0`` and ``input_hint_block.K`` (the
control image's encoder: convolutions at even indices, SiLUs between them). A ControlNet
mirrors its UNet's down and mid blocks, so the names follow from the base UNet's config;
the control-only parts and the few ways a ControlNet may differ from its UNet (the hint
encoder's widths, transformer depth, linear or convolutional projections) are read from
the shapes. Works on any mapping of names (tensors or shapes), in both directions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from .original_layout import _unet_prefixes, rename_by_table

ORIGINAL_PREFIX = "control_model."
HINT_IN = "controlnet_cond_embedding.conv_in."
# Config entries a ControlNet takes over from its UNet (diffusers' ControlNetModel.__init__ arguments).
UNET_CONFIG_KEYS = (
    "in_channels", "flip_sin_to_cos", "freq_shift", "down_block_types", "mid_block_type", "only_cross_attention",
    "block_out_channels", "layers_per_block", "downsample_padding", "mid_block_scale_factor", "act_fn",
    "norm_num_groups", "norm_eps", "cross_attention_dim", "transformer_layers_per_block", "encoder_hid_dim",
    "encoder_hid_dim_type", "attention_head_dim", "num_attention_heads", "use_linear_projection",
    "class_embed_type", "addition_embed_type", "addition_time_embed_dim", "num_class_embeds", "upcast_attention",
    "resnet_time_scale_shift", "projection_class_embeddings_input_dim",
)
# Widths of the text context the cross-attention reads, per family.
CONTEXT_FAMILIES = {768: "sd1", 1024: "sd2", 2048: "sdxl"}

V = TypeVar("V")


def is_original_layout(names: Mapping[str, object]) -> bool:
    return any(k.startswith((ORIGINAL_PREFIX + "input_hint_block.", "input_hint_block.")) for k in names)


def is_diffusers_layout(names: Mapping[str, object]) -> bool:
    return HINT_IN + "weight" in names


def _hint_count(names, prefix: str, index_at: int) -> int:
    """How many convolutions the hint encoder has (from the weight names)."""
    found = {int(k.split(".")[index_at]) for k in names if k.startswith(prefix) and k.endswith(".weight")
             and k.split(".")[index_at].isdigit()}
    return len(found)


def _table(unet_config: Mapping, convs: int) -> list[tuple[str, str, bool]]:
    """(diffusers prefix, original prefix, is_resnet) for every part of a ControlNet of this UNet."""
    levels, per = len(unet_config["block_out_channels"]), unet_config["layers_per_block"]
    shape = {"block_out_channels": unet_config["block_out_channels"], "layers_per_block": per,
             "up_block_types": ("UpBlock2D",) * levels}  # the up half is not a ControlNet's; any types do
    keep = ("down_blocks.", "mid_block.", "time_embedding.", "add_embedding.", "conv_in.")
    out = [row for row in _unet_prefixes(shape) if row[0].startswith(keep)]
    out += [(f"controlnet_down_blocks.{i}.", f"zero_convs.{i}.0.", False) for i in range(levels * (per + 1))]
    out.append(("controlnet_mid_block.", "middle_block_out.0.", False))
    # The hint encoder: convolutions at even indices (SiLUs between them), the first and last named apart.
    out.append((HINT_IN, "input_hint_block.0.", False))
    out += [(f"controlnet_cond_embedding.blocks.{j}.", f"input_hint_block.{2 * (j + 1)}.", False)
            for j in range(convs - 2)]
    out.append(("controlnet_cond_embedding.conv_out.", f"input_hint_block.{2 * (convs - 1)}.", False))
    # Longest first, so input_blocks.1. never claims input_blocks.10.'s names.
    return sorted(out, key=lambda row: -len(row[1]))


def original_to_diffusers(state: Mapping[str, V], unet_config: Mapping) -> dict[str, V]:
    """Original-layout ControlNet names (with or without ``control_model.``) -> ControlNetModel names.

    Raises KeyError naming a weight that has no place in a ControlNet of this UNet.
    """
    stripped = {k.removeprefix(ORIGINAL_PREFIX): v for k, v in state.items()}
    table = _table(unet_config, _hint_count(stripped, "input_hint_block.", 1))
    return rename_by_table(stripped, table, to_original=False)


def diffusers_to_original(state: Mapping[str, V], unet_config: Mapping) -> dict[str, V]:
    """ControlNetModel names -> the original single-file names under ``control_model.`` (tests, export)."""
    convs = _hint_count(state, "controlnet_cond_embedding.blocks.", 2) + 2
    table = sorted(_table(unet_config, convs), key=lambda row: -len(row[0]))
    return rename_by_table(state, table, to_original=True, prefix=ORIGINAL_PREFIX)


def context_width(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """The text context width the cross-attention reads (768 SD 1.x, 1024 SD 2.x, 2048 SDXL); None: no attention."""
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return int(shape[1])
    return None


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], unet_config: Mapping) -> dict:
    """The ControlNetModel config for weights of these shapes (diffusers names), starting from the UNet's."""
    config = {k: unet_config[k] for k in UNET_CONFIG_KEYS if k in unet_config}
    levels = len(config["block_out_channels"])
    config["in_channels"] = int(shapes["conv_in.weight"][1])
    config["conditioning_channels"] = int(shapes[HINT_IN + "weight"][1])
    widths = [int(shapes[HINT_IN + "weight"][0])]
    j = 1
    while f"controlnet_cond_embedding.blocks.{j}.weight" in shapes:  # the strided convolution of each stage
        widths.append(int(shapes[f"controlnet_cond_embedding.blocks.{j}.weight"][0]))
        j += 2
    config["conditioning_embedding_out_channels"] = tuple(widths)
    depths = []
    for i in range(levels):
        head = f"down_blocks.{i}.attentions.0.transformer_blocks."
        blocks = {int(k.split(".")[5]) for k in shapes if k.startswith(head)}
        depths.append(max(blocks) + 1 if blocks else 1)
    config["transformer_layers_per_block"] = tuple(depths)
    proj = [s for k, s in shapes.items() if k.endswith("proj_in.weight")]
    if proj:
        config["use_linear_projection"] = len(proj[0]) == 2
    width = context_width(shapes)
    if width is not None:
        config["cross_attention_dim"] = width
    if "add_embedding.linear_1.weight" in shapes:
        config["projection_class_embeddings_input_dim"] = int(shapes["add_embedding.linear_1.weight"][1])
    return config
