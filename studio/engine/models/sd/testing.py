"""Random-weight Stable Diffusion models built in code, for tests and benchmarks.

``build_random`` makes a family's networks at any width (tiny ones for tests,
SD 1.5-sized for the benchmark); ``save_diffusers`` and ``save_single_file`` write
them in the two on-disk layouts the loader reads, plus a weightless config
folder such as studio/resources/sd_configs holds for real models.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .detect import INPAINT_CHANNELS
from .load import SHARED_TOKENIZER
from .original_layout import pipeline_to_original


@dataclass
class RandomSD:
    family: str
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoders: list[torch.nn.Module]
    scheduler_config: dict = field(default_factory=dict)


def _clip_config(hidden: int, layers: int, act: str, projection: int | None = None):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=hidden * 2 + 5,
                          num_attention_heads=max(1, hidden // 16), num_hidden_layers=layers,
                          max_position_embeddings=77, hidden_act=act, projection_dim=projection or hidden,
                          bos_token_id=0, eos_token_id=2, pad_token_id=1)


def build_random(family: str, *, size: str = "tiny", seed: int = 0, prediction: str | None = None,
                 inpainting: bool = False) -> RandomSD:
    """A family's UNet, VAE and text encoder(s) with seeded random weights; ``size`` 'tiny' or 'sd15'.

    ``inpainting``: the UNet takes 9 input channels (latent, mask, masked image latent), as the SD 1.5 and
    SDXL inpainting checkpoints do.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    in_channels = INPAINT_CHANNELS if inpainting else 4
    if size == "sd15":
        if family != "sd1":
            raise ValueError("the full-size random model is built for sd1 only")
        # diffusers' defaults are SD 1.5's
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, in_channels=in_channels)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=512)
        encoders = [CLIPTextModel(_clip_config(768, 12, "quick_gelu"))]
    else:
        xl = family == "sdxl"
        ctx = 64 if xl else 32
        unet_kwargs = dict(
            sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            norm_num_groups=8, cross_attention_dim=ctx, attention_head_dim=(2, 4),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D") if xl else (
                "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D") if xl else ("UpBlock2D", "CrossAttnUpBlock2D"),
            use_linear_projection=family != "sd1")
        if xl:
            unet_kwargs.update(addition_embed_type="text_time", addition_time_embed_dim=8,
                               projection_class_embeddings_input_dim=8 * 6 + 32, transformer_layers_per_block=(1, 2))
        if family == "sdxl_refiner":
            unet_kwargs = _refiner_unet_kwargs()
        unet = UNet2DConditionModel(**unet_kwargs)
        vae = AutoencoderKL(block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=4,
                            latent_channels=4, sample_size=64,
                            scaling_factor=0.13025 if family in ("sdxl", "sdxl_refiner") else 0.18215)
        act = "quick_gelu" if family in ("sd1", "sdxl") else "gelu"
        encoders = [] if family == "sdxl_refiner" else [CLIPTextModel(_clip_config(32, 2, act))]
        if family in ("sdxl", "sdxl_refiner"):  # the refiner has only the base's second encoder (OpenCLIP bigG)
            encoders.append(CLIPTextModelWithProjection(_clip_config(32, 2, "gelu", projection=32)))
    sched = dict(_class_name="EulerDiscreteScheduler", beta_schedule="scaled_linear", beta_start=0.00085,
                 beta_end=0.012, num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading",
                 prediction_type=prediction or ("v_prediction" if family == "sd2" else "epsilon"))
    return RandomSD(family, unet.eval(), vae.eval(), [e.eval() for e in encoders], sched)


def _refiner_unet_kwargs() -> dict:
    """The SDXL refiner's UNet shape in miniature: attention only in the inner levels (the outer ones have
    none), context and pooled embedding from one 32-wide encoder, and five time ids (sizes, crop, aesthetic
    score) of 8 each. Three levels where the real one has four keep the tests fast."""
    return dict(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 24, 32), layers_per_block=1,
        norm_num_groups=8, cross_attention_dim=32, attention_head_dim=(2, 3, 4), transformer_layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=8 * 5 + 32)


def save_configs(model: RandomSD, folder: Path) -> Path:
    """The weightless config folder (model_index, unet/vae/text encoder/scheduler configs, tokenizer settings)."""
    folder = Path(folder)
    model.unet.save_config(folder / "unet")
    model.vae.save_config(folder / "vae")
    subs = _encoder_folders(model)
    for sub, enc in zip(subs, model.text_encoders, strict=True):
        enc.config.save_pretrained(str(folder / sub))
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(model.scheduler_config))
    pads = {"sd1": ["<|endoftext|>"], "sd2": ["!"], "sdxl": ["<|endoftext|>", "!"], "sdxl_refiner": ["!"]}
    for sub, pad in zip(_tokenizer_folders(model), pads[model.family], strict=True):
        (folder / sub).mkdir(exist_ok=True)
        (folder / sub / "tokenizer_config.json").write_text(json.dumps({"pad_token": pad, "model_max_length": 77}))
    index = {"_class_name": "StableDiffusionXLPipeline" if model.family == "sdxl" else "StableDiffusionPipeline"}
    if model.family == "sdxl_refiner":  # as the published refiner's model_index.json says
        index = {"_class_name": "StableDiffusionXLImg2ImgPipeline", "requires_aesthetics_score": True,
                 "force_zeros_for_empty_prompt": False}
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def _encoder_folders(model: RandomSD) -> list[str]:
    return ["text_encoder_2"] if model.family == "sdxl_refiner" else ["text_encoder", "text_encoder_2"][
        : len(model.text_encoders)]


def _tokenizer_folders(model: RandomSD) -> list[str]:
    return [sub.replace("text_encoder", "tokenizer") for sub in _encoder_folders(model)]


def save_diffusers(model: RandomSD, folder: Path) -> Path:
    """A complete diffusers pipeline folder, tokenizer files included."""
    folder = save_configs(model, folder)
    model.unet.save_pretrained(str(folder / "unet"))
    model.vae.save_pretrained(str(folder / "vae"))
    for sub, enc in zip(_encoder_folders(model), model.text_encoders, strict=True):
        enc.save_pretrained(str(folder / sub))
    for sub in _tokenizer_folders(model):
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(SHARED_TOKENIZER / name, folder / sub / name)
    return folder


def save_single_file(model: RandomSD, path: Path) -> Path:
    """One original-layout .safetensors file, as the CompVis / Stability releases are laid out."""
    from safetensors.torch import save_file

    save_file(pipeline_to_original(model.family, model.unet, model.vae, model.text_encoders), str(path))
    return Path(path)
