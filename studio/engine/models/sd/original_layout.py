"""diffusers / transformers weights -> the original Stable Diffusion single-file layout.

The inverse of what single_file.py reads: tests build tiny models in code and
save them as SD 1.x, 2.x and XL single files with this, and it can export a
diffusers model for tools that only read single files. General over the number
of UNet levels and layers per block, so tiny models map like real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch

from .detect import SD1_TEXT, SD2_TEXT, UNET, VAE, XL_REFINER_TEXT, XL_TEXT_1, XL_TEXT_2

V = TypeVar("V")  # tensors, shapes or names: renaming never looks at the values
_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
_VAE_ATTN = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out"))


def _unet_prefixes(config: Mapping) -> list[tuple[str, str, bool]]:
    """(diffusers prefix, original prefix, is_resnet) for every block of a UNet2DConditionModel."""
    levels, per = len(config["block_out_channels"]), config["layers_per_block"]
    out = []
    for i in range(levels):
        for j in range(per):
            k = 1 + i * (per + 1) + j
            out += [(f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{k}.0.", True),
                    (f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{k}.1.", False)]
        if i < levels - 1:
            out.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (per + 1)}.0.op.", False))
        attn = "CrossAttn" in config["up_block_types"][i]
        for j in range(per + 1):
            k = i * (per + 1) + j
            out += [(f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{k}.0.", True),
                    (f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{k}.1.", False)]
        if i < levels - 1:
            out.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{i * (per + 1) + per}.{2 if attn else 1}.",
                        False))
    out += [("mid_block.resnets.0.", "middle_block.0.", True), ("mid_block.attentions.0.", "middle_block.1.", False),
            ("mid_block.resnets.1.", "middle_block.2.", True)]
    out += [("time_embedding.linear_1.", "time_embed.0.", False), ("time_embedding.linear_2.", "time_embed.2.", False),
            ("add_embedding.linear_1.", "label_emb.0.0.", False), ("add_embedding.linear_2.", "label_emb.0.2.", False),
            ("conv_in.", "input_blocks.0.0.", False), ("conv_norm_out.", "out.0.", False),
            ("conv_out.", "out.2.", False)]
    return out


def rename_by_table(state: Mapping[str, V], table: list[tuple[str, str, bool]], *, to_original: bool,
                    prefix: str = "") -> dict[str, V]:
    """Rename every key by the first (diffusers prefix, original prefix, is a resnet) row it starts with.

    ``to_original`` renames diffusers names to original ones (``prefix`` put in front), else the other
    way. Resnet rows also rename the layer inside the block (norm1 <-> in_layers.0, ...). Raises
    KeyError(key) for a key no row names; list longer prefixes first so input_blocks.1. never takes
    input_blocks.10.'s names.
    """
    pairs = _RESNET if to_original else tuple((b, a) for a, b in _RESNET)
    out = {}
    for key, value in state.items():
        for row in table:
            src, dst = (row[0], row[1]) if to_original else (row[1], row[0])
            if key.startswith(src):
                rest = key[len(src):]
                if row[2]:
                    for a, b in pairs:
                        if rest.startswith(a + "."):
                            rest = b + rest[len(a):]
                            break
                out[prefix + dst + rest] = value
                break
        else:
            raise KeyError(key)
    return out


def unet_to_original(state: Mapping[str, torch.Tensor], config: Mapping) -> dict[str, torch.Tensor]:
    try:
        return rename_by_table(state, _unet_prefixes(config), to_original=True, prefix=UNET)
    except KeyError as exc:
        raise KeyError(f"no original-layout name for UNet weight {exc.args[0]}") from None


def vae_to_original(state: Mapping[str, torch.Tensor], config: Mapping) -> dict[str, torch.Tensor]:
    levels = len(config["block_out_channels"])
    out = {}
    for key, value in state.items():
        k = key.replace("conv_norm_out.", "norm_out.").replace("conv_shortcut.", "nin_shortcut.")
        k = k.replace("mid_block.resnets.0.", "mid.block_1.").replace("mid_block.resnets.1.", "mid.block_2.")
        if "mid_block.attentions.0." in k:
            k = k.replace("mid_block.attentions.0.", "mid.attn_1.")
            for a, b in _VAE_ATTN:
                k = k.replace(f"attn_1.{a}.", f"attn_1.{b}.")
            if value.ndim == 2:  # the original attention uses 1x1 convolutions
                value = value[:, :, None, None]
        parts = k.split(".")
        if parts[1] in ("down_blocks", "up_blocks"):
            i = int(parts[2])
            level = i if parts[1] == "down_blocks" else levels - 1 - i  # the decoder's levels count upwards
            head = f"{parts[0]}.{'down' if parts[1] == 'down_blocks' else 'up'}.{level}"
            if parts[3] == "resnets":
                k = f"{head}.block.{parts[4]}." + ".".join(parts[5:])
            else:  # downsamplers.0.conv / upsamplers.0.conv
                k = f"{head}.{'downsample' if parts[3] == 'downsamplers' else 'upsample'}." + ".".join(parts[5:])
        out[VAE + k] = value
    return out


def clip_to_original(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """OpenAI CLIP text model: the original layout is the transformers one under a prefix."""
    return {prefix + (k if k.startswith("text_model.") else "text_model." + k): v
            for k, v in state.items() if not k.endswith("position_ids")}


def open_clip_to_original(state: Mapping[str, torch.Tensor], prefix: str, extra_layers: int = 0) -> dict:
    """transformers CLIP -> OpenCLIP names with fused q/k/v; ``extra_layers`` appends unused layers as SD 2.x has."""
    s = {k.removeprefix("text_model."): v for k, v in state.items()}
    out = {prefix + "token_embedding.weight": s["embeddings.token_embedding.weight"],
           prefix + "positional_embedding": s["embeddings.position_embedding.weight"],
           prefix + "ln_final.weight": s["final_layer_norm.weight"],
           prefix + "ln_final.bias": s["final_layer_norm.bias"],
           prefix + "logit_scale": torch.tensor(4.6052)}
    width = s["embeddings.token_embedding.weight"].shape[1]
    out[prefix + "text_projection"] = s["text_projection.weight"].T.contiguous() if "text_projection.weight" in s \
        else torch.eye(width)
    layers = 1 + max(int(k.split(".")[2]) for k in s if k.startswith("encoder.layers."))
    for i in range(layers + extra_layers):
        src, dst = f"encoder.layers.{min(i, layers - 1)}.", f"{prefix}transformer.resblocks.{i}."
        # Unused extra layers get noise: a loader that wrongly ran them would change the output.
        fill = (lambda t: torch.randn_like(t)) if i >= layers else (lambda t: t)
        for kind in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{kind}"] = fill(torch.cat([s[f"{src}self_attn.{p}_proj.{kind}"] for p in "qkv"]))
            for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                         ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                out[f"{dst}{a}.{kind}"] = fill(s[f"{src}{b}.{kind}"])
    return out


def pipeline_to_original(family: str, unet, vae, text_encoders) -> dict[str, torch.Tensor]:
    """A whole model (diffusers UNet and VAE, transformers text encoders) as one original-layout state dict."""
    out = unet_to_original(unet.state_dict(), unet.config)
    out.update(vae_to_original(vae.state_dict(), vae.config))
    if family == "sd1":
        out.update(clip_to_original(text_encoders[0].state_dict(), SD1_TEXT))
    elif family == "sd2":
        out.update(open_clip_to_original(text_encoders[0].state_dict(), SD2_TEXT, extra_layers=1))
    elif family == "sdxl_refiner":
        out.update(open_clip_to_original(text_encoders[0].state_dict(), XL_REFINER_TEXT))
    else:
        out.update(clip_to_original(text_encoders[0].state_dict(), XL_TEXT_1))
        out.update(open_clip_to_original(text_encoders[1].state_dict(), XL_TEXT_2))
    return {k: v.detach().clone().contiguous() for k, v in out.items()}
