"""Which Stable Diffusion family a checkpoint is, from its tensor names alone.

Names, not shapes, decide the family (so tiny test models detect like real ones):
SD 1.x carries OpenAI CLIP under ``cond_stage_model.transformer``, SD 2.x an
OpenCLIP model under ``cond_stage_model.model``, SDXL base two encoders under
``conditioner.embedders.0`` (CLIP) and ``.1`` (OpenCLIP bigG), the SDXL refiner
only OpenCLIP bigG, as ``conditioner.embedders.0.model``. An inpainting
checkpoint of any family has a UNet whose first convolution takes 9 channels
(the latent, the mask and the masked image's latent) instead of 4.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ....io.safe_json import JSONFileError, loads_limited
from ..errors import ModelLoadError

UNET = "model.diffusion_model."
VAE = "first_stage_model."
SD1_TEXT = "cond_stage_model.transformer."
SD2_TEXT = "cond_stage_model.model."
XL_TEXT_1 = "conditioner.embedders.0.transformer."
XL_TEXT_2 = "conditioner.embedders.1.model."
XL_REFINER_TEXT = "conditioner.embedders.0.model."
INPAINT_CHANNELS = 9  # latent (4) + mask (1) + masked image latent (4)
CONFIG_DEPTH = 16  # diffusers configs nest a few levels (lists of block types); deeper is garbage
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # real ones are a few KB

# Tell-tale names of layouts this loader does not handle, to name them in the error.
OTHER_LAYOUTS = (
    ("joint_blocks.", "Stable Diffusion 3"),
    ("double_blocks.", "Flux"),
    ("lora_", "a LoRA (put it in a LoRA folder, it is not a full model)"),
    ("lora_unet", "a LoRA (put it in a LoRA folder, it is not a full model)"),
    ("down_blocks.0.resnets.0.conv1.weight", "a lone diffusers UNet or VAE (load the whole diffusers folder instead)"),
    ("encoder.down.0.block.0.conv1.weight", "a standalone VAE (not a full model)"),
)


@dataclass(frozen=True)
class Detection:
    family: str  # "sd1", "sd2", "sdxl" or "sdxl_refiner"
    prediction: str | None  # "epsilon" / "v_prediction" when the file says so, None for the family default
    inpainting: bool = False  # a 9-channel UNet fed the mask and the masked image (SD 1.5 / SDXL inpainting)


def _has(keys, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in keys)


def detect_keys(shapes: Mapping[str, tuple[int, ...]], name: str = "checkpoint") -> Detection:
    """Family of an original-layout (CompVis / Stability) state dict; ModelLoadError naming what is wrong."""
    keys = shapes.keys()
    if not _has(keys, UNET):
        for marker, what in OTHER_LAYOUTS:
            if any(marker in k for k in keys):
                raise ModelLoadError(f"{name} looks like {what}; it is not a Stable Diffusion 1.x/2.x/XL checkpoint")
        sample = ", ".join(repr(k[:60]) for k in sorted(keys)[:3]) or "no tensors at all"
        raise ModelLoadError(
            f"{name} is not a Stable Diffusion checkpoint this studio knows: it has no UNet weights under "
            f"'{UNET}' (first names: {sample})")
    conv_in = shapes.get(UNET + "input_blocks.0.0.weight")
    inpainting = conv_in is not None and len(conv_in) == 4 and conv_in[1] == INPAINT_CHANNELS
    if conv_in is not None and len(conv_in) == 4 and conv_in[1] not in (4, INPAINT_CHANNELS):
        kind = "an InstructPix2Pix model" if conv_in[1] == 8 else "a model"
        raise ModelLoadError(
            f"{name} is {kind} with {conv_in[1]} input channels; only regular (4-channel) and inpainting "
            "(9-channel) checkpoints are supported")
    if _has(keys, XL_TEXT_2) and _has(keys, XL_TEXT_1):
        family = "sdxl"
    elif _has(keys, XL_REFINER_TEXT):
        family = "sdxl_refiner"
    elif _has(keys, SD2_TEXT):
        family = "sd2"
    elif _has(keys, SD1_TEXT):
        family = "sd1"
    else:
        raise ModelLoadError(
            f"{name} has UNet weights but no text encoder this studio recognises (expected '{SD1_TEXT}', "
            f"'{SD2_TEXT}' or '{XL_TEXT_1}' + '{XL_TEXT_2}'); it may be a UNet-only file")
    if not _has(keys, VAE):
        raise ModelLoadError(f"{name} has no VAE weights under '{VAE}'; use a checkpoint with its VAE baked in")
    prediction = "v_prediction" if "v_pred" in keys else None  # ComfyUI's marker for v-prediction models
    return Detection(family, prediction, inpainting)


def prediction_hint(path: Path, family: str) -> str | None:
    """v-prediction or not, from a sidecar .yaml (as AUTOMATIC1111 uses) or the file name for SD 2.x."""
    yaml = path.with_suffix(".yaml")
    if yaml.is_file():
        text = yaml.read_text(errors="replace")
        return "v_prediction" if re.search(r"parameterization:\s*[\"']?v[\"']?\s*$", text, re.M) else "epsilon"
    if family == "sd2":
        # SD 2.x 768 models predict v; the 512 "base" models predict epsilon.
        stem = path.stem.lower()
        return "epsilon" if ("512" in stem or "base" in stem) and "768" not in stem else "v_prediction"
    return None


def detect_diffusers_folder(folder: Path) -> Detection:
    """Family of a diffusers pipeline folder, from its config files."""
    folder = Path(folder)
    unet_cfg = read_config(folder / "unet" / "config.json")
    channels = unet_cfg.get("in_channels", 4)
    if channels not in (4, INPAINT_CHANNELS) or isinstance(channels, bool):
        raise ModelLoadError(
            f"{folder.name} has a UNet with {str(channels)[:40]} input channels (a pix2pix model, or a damaged "
            "config); only regular (4-channel) and inpainting (9-channel) models are supported")
    if unet_cfg.get("addition_embed_type") == "text_time" or (folder / "text_encoder_2").is_dir():
        # The refiner (StableDiffusionXLImg2ImgPipeline with requires_aesthetics_score) has text_encoder_2 only.
        family = "sdxl" if (folder / "text_encoder").is_dir() else "sdxl_refiner"
    else:
        te = read_config(folder / "text_encoder" / "config.json")
        family = "sd2" if te.get("hidden_act") == "gelu" else "sd1"  # OpenCLIP uses gelu, OpenAI CLIP quick_gelu
    sched_file = folder / "scheduler" / "scheduler_config.json"
    prediction = read_config(sched_file, required=False).get("prediction_type")
    if prediction is not None and not isinstance(prediction, str):
        raise ModelLoadError(f"{folder.name}/scheduler/scheduler_config.json has a prediction_type that is not a "
                             "name; download the model folder again")
    return Detection(family, prediction, channels == INPAINT_CHANNELS)


def read_config(path: Path, required: bool = True) -> dict:
    """A diffusers config file as a dict; ModelLoadError naming the file when it is missing (and
    ``required``; else {}), unreadable, not JSON, too deep, or not a JSON object."""
    where = f"{path.parent.parent.name}/{path.parent.name}/{path.name}"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelLoadError(f"{where} is {path.stat().st_size:,} bytes, far more than a config file; "
                                 "download the model folder again")
        value = loads_limited(path.read_bytes(), max_depth=CONFIG_DEPTH, max_bytes=MAX_CONFIG_BYTES)
    except FileNotFoundError:
        if not required:
            return {}
        raise ModelLoadError(f"{path.parent.parent.name}: missing {path.parent.name}/{path.name}; "
                             "the model folder is incomplete, download it again") from None
    except OSError as exc:
        raise ModelLoadError(f"{where} cannot be read ({exc.strerror or exc})") from None
    except JSONFileError as exc:
        raise ModelLoadError(f"{where} {exc}; download the model folder again") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{where} holds a JSON {type(value).__name__}, not an object of settings; "
                             "download the model folder again")
    return value
