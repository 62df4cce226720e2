"""Random-weight Flux.1 models built in code, for tests and benchmarks, saved in every layout the loader reads.

``build_random_flux`` makes dev / schnell / Fill networks at any width (tiny for tests, wider for the
benchmark); ``save_diffusers``, ``save_all_in_one`` and ``save_split`` write them as a diffusers folder,
as ComfyUI's one-file checkpoint, and as BFL's transformer file with clip_l, t5xxl and ae.safetensors in
ComfyUI's models/ folders.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..sd.load import SHARED_TOKENIZER
from ..sd.original_layout import vae_to_original
from .flux_files import CLIP_PREFIX, FLUX_VAE_SCALING, FLUX_VAE_SHIFT, T5_PREFIX, TRANSFORMER_PREFIX
from .flux_layout import flux_to_original, rope_axes
from .parts import ModelFiles
from .t5_tokenizer import T5_TOKENIZER_DIR


@dataclass
class RandomFlux:
    variant: str  # "dev", "schnell", "fill"
    transformer: torch.nn.Module
    clip: torch.nn.Module
    t5: torch.nn.Module
    vae: torch.nn.Module


def build_random_flux(variant: str = "dev", *, seed: int = 0, width: int = 64, layers: tuple[int, int] = (1, 1),
                      head_dim: int = 32) -> RandomFlux:
    """Seeded random networks: ``width`` wide (heads of ``head_dim``), ``layers`` = (double, single) blocks.

    The VAE has 4 levels (8x down, 16 latent channels) as Flux's does, so Fill's 8x8 mask layout is real."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    text_width = 32
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=384 if variant == "fill" else 64, out_channels=64, num_layers=layers[0],
        num_single_layers=layers[1], attention_head_dim=head_dim, num_attention_heads=width // head_dim,
        joint_attention_dim=text_width, pooled_projection_dim=64, guidance_embeds=variant != "schnell",
        axes_dims_rope=rope_axes(head_dim))
    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=64, intermediate_size=96, num_attention_heads=1, num_hidden_layers=1,
        max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=64, bos_token_id=49406,
        eos_token_id=49407, pad_token_id=49407))
    t5 = T5EncoderModel(T5Config(
        vocab_size=32128, d_model=text_width, d_kv=16, d_ff=48, num_heads=2, num_layers=1,
        relative_attention_num_buckets=32, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
        use_cache=False, tie_word_embeddings=False))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1,
        norm_num_groups=32, scaling_factor=FLUX_VAE_SCALING, shift_factor=FLUX_VAE_SHIFT, use_quant_conv=False,
        use_post_quant_conv=False, sample_size=64)
    for net in (transformer, clip, t5, vae):
        net.eval().requires_grad_(False)
    return RandomFlux(variant, transformer, clip, t5, vae)


def scheduler_config(variant: str) -> dict:
    """FlowMatchEulerDiscreteScheduler's config as the published dev / schnell folders have it."""
    dynamic = variant != "schnell"
    return {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000,
            "shift": 3.0 if dynamic else 1.0, "use_dynamic_shifting": dynamic, "base_shift": 0.5,
            "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096}


def save_diffusers(model: RandomFlux, folder: Path) -> Path:
    """A complete FluxPipeline / FluxFillPipeline folder, tokenizers included."""
    folder = Path(folder)
    model.transformer.save_pretrained(str(folder / "transformer"))
    model.vae.save_pretrained(str(folder / "vae"))
    model.clip.save_pretrained(str(folder / "text_encoder"))
    model.t5.save_pretrained(str(folder / "text_encoder_2"))
    shutil.copytree(SHARED_TOKENIZER, folder / "tokenizer")
    shutil.copytree(T5_TOKENIZER_DIR, folder / "tokenizer_2")
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler_config(model.variant)))
    index = {"_class_name": "FluxFillPipeline" if model.variant == "fill" else "FluxPipeline",
             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"], "vae": ["diffusers", "AutoencoderKL"],
             "transformer": ["diffusers", "FluxTransformer2DModel"], "text_encoder": ["transformers", "CLIPTextModel"],
             "text_encoder_2": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "tokenizer_2": ["transformers", "T5TokenizerFast"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def clip_file_state(model: RandomFlux) -> dict[str, torch.Tensor]:
    """CLIP-L as ComfyUI's clip_l.safetensors names it (transformers' names under ``text_model.``)."""
    return {(k if k.startswith("text_model.") else "text_model." + k): v.contiguous()
            for k, v in model.clip.state_dict().items() if not k.endswith("position_ids")}


def t5_file_state(model: RandomFlux) -> dict[str, torch.Tensor]:
    """T5-XXL as t5xxl_fp16.safetensors names it (the token embedding once, as ``shared.weight``)."""
    return {k: v.contiguous() for k, v in model.t5.state_dict().items() if k != "encoder.embed_tokens.weight"}


def vae_file_state(model: RandomFlux) -> dict[str, torch.Tensor]:
    """The VAE in BFL's ae.safetensors names (the LDM autoencoder's)."""
    state = vae_to_original(model.vae.state_dict(), dict(model.vae.config))
    return {k.removeprefix("first_stage_model."): v.contiguous() for k, v in state.items()}


def transformer_file_state(model: RandomFlux) -> dict[str, torch.Tensor]:
    """The transformer in BFL's names (flux1-dev.safetensors)."""
    return {k: v.contiguous() for k, v in flux_to_original(model.transformer.state_dict()).items()}


def save_all_in_one(model: RandomFlux, path: Path, *, dtype: torch.dtype | None = None) -> Path:
    """ComfyUI's checkpoint: model.diffusion_model., text_encoders.clip_l/t5xxl.transformer., vae."""
    from safetensors.torch import save_file

    state = {TRANSFORMER_PREFIX + k: v for k, v in transformer_file_state(model).items()}
    state.update({CLIP_PREFIX + k: v for k, v in clip_file_state(model).items()})
    state.update({T5_PREFIX + k: v for k, v in t5_file_state(model).items()})
    state.update({"vae." + k: v for k, v in vae_file_state(model).items()})
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(path))
    return Path(path)


def save_split(model: RandomFlux, root: Path, name: str = "flux1-tiny") -> ModelFiles:
    """BFL's transformer file and the encoders and VAE apart, in ComfyUI's models/ folders."""
    from safetensors.torch import save_file

    root = Path(root)
    paths = {"transformer": root / "models" / "diffusion_models" / f"{name}.safetensors",
             "clip_l": root / "models" / "text_encoders" / "clip_l.safetensors",
             "t5xxl": root / "models" / "text_encoders" / "t5xxl_fp16.safetensors",
             "vae": root / "models" / "vae" / "ae.safetensors"}
    states = {"transformer": transformer_file_state(model), "clip_l": clip_file_state(model),
              "t5xxl": t5_file_state(model), "vae": vae_file_state(model)}
    for part, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(states[part], str(path))
    return ModelFiles("flux", paths["transformer"], {"clip_l": paths["clip_l"], "t5xxl": paths["t5xxl"]},
                      paths["vae"], variant=model.variant)
