"""Which module of the loaded model each LoRA layer adapts, from the model's own module names.

Every module with a weight gets the names the common writers give it:

- kohya / AUTOMATIC1111: ``lora_unet_`` + the module's path with dots as underscores, in the
  diffusers layout (``down_blocks_0_attentions_0_…``, what sd-scripts writes for SD 1.x/2.x) and in
  the original CompVis layout (``input_blocks_1_1_…``, what it writes for SDXL); ``lora_te_``
  (one text encoder) or ``lora_te1_`` / ``lora_te2_`` (SDXL's two) + the transformers CLIP path;
- diffusers / PEFT: ``unet.`` + the diffusers path (or the bare path), ``text_encoder.`` /
  ``text_encoder_2.`` + the CLIP path.

Nothing is listed by hand: a model with other blocks gets its own names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .detect import UNET
from .lora_files import LoraLayer
from .original_layout import unet_to_original


@dataclass(frozen=True, eq=False)
class Target:
    part: str  # "unet" or "te" (a text encoder): which of the prompt's two weights applies
    name: str  # e.g. "unet:down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    module: torch.nn.Module


def _weighted_modules(net: torch.nn.Module):
    for name, module in net.named_modules():
        if name and isinstance(getattr(module, "weight", None), torch.nn.Parameter):
            yield name, module


def _original_names(unet: torch.nn.Module, names: list[str]) -> dict[str, str]:
    """diffusers module path -> original-layout path, for the modules the layout names."""
    out = {}
    config = unet.config
    for name in names:
        try:
            (original,) = unet_to_original({f"{name}.weight": None}, config)
        except (KeyError, ValueError, IndexError, TypeError):
            continue  # a block the original layout does not have: reachable by its diffusers name only
        out[name] = original[len(UNET):-len(".weight")]
    return out


def _underscored(name: str) -> str:
    return name.replace(".", "_")


def build_targets(unet: torch.nn.Module, text_encoders: list[torch.nn.Module]) -> dict[str, Target]:
    """Every key spelling a LoRA file may use for a module of these networks -> that module."""
    table: dict[str, Target] = {}
    modules = dict(_weighted_modules(unet))
    originals = _original_names(unet, list(modules))
    for name, module in modules.items():
        target = Target("unet", f"unet:{name}", module)
        for key in (f"lora_unet_{_underscored(name)}", f"unet.{name}", name):
            table[key] = target
        if name in originals:
            table[f"lora_unet_{_underscored(originals[name])}"] = target
    kohya = ["lora_te"] if len(text_encoders) == 1 else ["lora_te1", "lora_te2"]
    diffusers = ["text_encoder", "text_encoder_2"]
    for i, encoder in enumerate(text_encoders):
        for name, module in _weighted_modules(encoder):
            # transformers 5 drops the "text_model." level on CLIPTextModel; the files always have it.
            full = name if name.startswith("text_model.") else f"text_model.{name}"
            target = Target("te", f"te{i + 1}:{full}", module)
            table[f"{kohya[i]}_{_underscored(full)}"] = target
            for key in (f"{diffusers[i]}.{full}", f"{diffusers[i]}.{full.removeprefix('text_model.')}"):
                table[key] = target
    return table


def _lookup_key(key: str) -> str:
    return key.removeprefix("base_model.model.")  # PEFT's wrapper around the adapted model


def match_layers(layers: list[LoraLayer], table: dict[str, Target]) -> tuple[list[tuple[LoraLayer, Target]],
                                                                           list[LoraLayer]]:
    """(layer, target) for each layer the model has, and the layers it has not."""
    matched, missing = [], []
    for layer in layers:
        target = table.get(_lookup_key(layer.key))
        if target is None:
            missing.append(layer)
        else:
            matched.append((layer, target))
    return matched, missing


# The cross-attention's context width tells the families apart: CLIP ViT-L (SD 1.x), OpenCLIP ViT-H
# (SD 2.x), both SDXL encoders side by side.
CONTEXT_FAMILIES = {768: "sd1", 1024: "sd2", 2048: "sdxl"}


def guess_family(layers: list[LoraLayer]) -> str | None:
    """The model family a LoRA was made for, from its keys and shapes (None: cannot tell)."""
    for layer in layers:
        if layer.key.startswith(("lora_te2_", "text_encoder_2.")):
            return "sdxl"
    for layer in layers:
        key = layer.key
        if ("attn2" in key and ("to_k" in key or "to_v" in key)) and layer.kind == "lora" \
                and layer.get("down").ndim >= 2:
            width = layer.get("down").flatten(1).shape[1]
            if width in CONTEXT_FAMILIES:
                return CONTEXT_FAMILIES[width]
    return None
