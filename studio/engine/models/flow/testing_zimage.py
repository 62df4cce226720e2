"""Random-weight Z-Image models built in code, for tests and benchmarks, saved in the layouts the loader reads.

``build_random_zimage`` makes the transformer, a Qwen3 encoder and Flux's VAE shape at any width (tiny for
tests); ``save_diffusers`` writes a pipeline folder (the shipped Qwen tokenizer files included) and
``save_comfy_split`` writes ComfyUI's models/diffusion_models, models/text_encoders and models/vae files
in the original key layout.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from .zimage import SCALING_FACTOR, SHIFT_FACTOR, TIMESTEP_SHIFT
from .zimage_prompts import TOKENIZER_DIR

QWEN_VOCAB = 151936  # Qwen3's embedding rows (the tokenizer's ids stop at 151668)


@dataclass
class RandomZImage:
    transformer: torch.nn.Module
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    shift: float = TIMESTEP_SHIFT


# A single-turn rendering of Qwen3's chat template, for the tokenizer handed to diffusers' ZImagePipeline (which
# calls apply_chat_template; the studio formats the same string itself, see zimage_prompts.CHAT_FORMAT).
QWEN3_ONE_TURN_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% if enable_thinking is defined and "
    "enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}{% endif %}")
SIZES = {"tiny": dict(dim=32, heads=2, layers=2, text_width=32, text_layers=3),
         # the transformer's steps dominate: 128-wide heads as the released model has, small encoder and VAE
         "mid": dict(dim=512, heads=4, layers=8, text_width=64, text_layers=3)}


def build_random_zimage(size: str = "tiny", *, seed: int = 0) -> RandomZImage:
    """A Z-Image pipeline's networks with seeded random weights: ``size`` "tiny" (tests) or "mid" (benchmarks)."""
    return _build(seed=seed, **SIZES[size])


def _build(*, dim: int, heads: int, layers: int, text_width: int, text_layers: int, seed: int) -> RandomZImage:
    from diffusers import AutoencoderKL, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed)
    head_dim = dim // heads
    if head_dim % 16:
        raise ValueError(f"dim / heads = {head_dim} must be a multiple of 16")
    axes = [head_dim // 4, head_dim * 3 // 8, head_dim * 3 // 8]  # the released model's rotary split, scaled
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=dim, n_layers=layers, n_refiner_layers=1,
        n_heads=heads, n_kv_heads=heads, cap_feat_dim=text_width, axes_dims=axes, axes_lens=[1536, 512, 512])
    # The pad tokens are zeros in a fresh model; random ones make a test notice if padding leaks in.
    with torch.no_grad():
        transformer.x_pad_token.normal_()
        transformer.cap_pad_token.normal_()
    text_heads = max(1, text_width // 16)
    encoder = Qwen3Model(Qwen3Config(
        vocab_size=QWEN_VOCAB, hidden_size=text_width, intermediate_size=text_width * 2, num_hidden_layers=text_layers,
        num_attention_heads=text_heads, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024,
        rms_norm_eps=1e-6, rope_theta=1_000_000.0, tie_word_embeddings=True, bos_token_id=151643,
        eos_token_id=151645))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(32, 32, 32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=32, sample_size=64, scaling_factor=SCALING_FACTOR,
                        shift_factor=SHIFT_FACTOR, use_quant_conv=False, use_post_quant_conv=False)
    return RandomZImage(transformer.eval(), encoder.eval(), vae.eval())


def zimage_pipeline(transformer, text_encoder, vae, tokenizer=None):
    """diffusers' ZImagePipeline on the given modules, with the shipped tokenizer (a Qwen3 chat template added)
    and an unshifting scheduler: hand it the studio's shifted flow times through ``sigmas=``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    from .zimage_prompts import load_qwen_tokenizer

    tokenizer = tokenizer if tokenizer is not None else load_qwen_tokenizer()
    tokenizer.chat_template = QWEN3_ONE_TURN_TEMPLATE
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
    return ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)


def save_diffusers(model: RandomZImage, folder: Path) -> Path:
    """A complete ZImagePipeline folder, as the published Z-Image-Turbo repository is laid out."""
    folder = Path(folder)
    model.transformer.save_pretrained(str(folder / "transformer"))
    model.vae.save_pretrained(str(folder / "vae"))
    model.text_encoder.save_pretrained(str(folder / "text_encoder"))
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(TOKENIZER_DIR / name, folder / "tokenizer" / name)
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000,
         "use_dynamic_shifting": False, "shift": model.shift}))
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "ZImagePipeline", "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen3Model"], "tokenizer": ["transformers", "Qwen2Tokenizer"],
        "transformer": ["diffusers", "ZImageTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}))
    return folder


def save_comfy_split(model: RandomZImage, root: Path, stem: str = "z_image_turbo_bf16") -> tuple[Path, Path, Path]:
    """ComfyUI's layout: models/diffusion_models/<stem>.safetensors, models/text_encoders/qwen_3_4b.safetensors and
    models/vae/ae.safetensors, each in the original names. Returns (transformer, encoder, vae) paths."""
    from safetensors.torch import save_file

    from .zimage_layout import qwen3_to_original, transformer_to_original, vae_to_original_flux

    paths = (Path(root) / "models" / "diffusion_models" / f"{stem}.safetensors",
             Path(root) / "models" / "text_encoders" / "qwen_3_4b.safetensors",
             Path(root) / "models" / "vae" / "ae.safetensors")
    parts = (transformer_to_original(model.transformer.state_dict()),
             qwen3_to_original(model.text_encoder.state_dict()), vae_to_original_flux(model.vae))
    for path, state in zip(paths, parts, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path))
    return paths


def save_all_in_one(model: RandomZImage, path: Path) -> Path:
    """One checkpoint with the three parts under ComfyUI's prefixes, as its checkpoint save writes them."""
    from safetensors.torch import save_file

    from .zimage_layout import (
        ENCODER_PREFIX,
        TRANSFORMER_PREFIX,
        VAE_PREFIX,
        qwen3_to_original,
        transformer_to_original,
        vae_to_original_flux,
    )

    state = transformer_to_original(model.transformer.state_dict(), TRANSFORMER_PREFIX)
    state.update(qwen3_to_original(model.text_encoder.state_dict(), ENCODER_PREFIX))
    state.update(vae_to_original_flux(model.vae, VAE_PREFIX))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return Path(path)
