"""Random-weight SD 3.x models built in code, saved in every layout ``load_sd3`` reads (tests, benchmarks).

``build_random_sd3`` makes the MMDiT (SD 3 Medium-like, or MMDiT-X with q/k norms and dual attention like
SD 3.5 Medium), a 16-channel VAE, CLIP-L, CLIP-G and T5 with seeded weights and real vocabularies (the
shipped tokenizers feed them). The widths keep the real models' rules the loader relies on (64-wide
heads where no q/k norm shows the width, CLIP widths that fit inside T5's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..sd.original_layout import vae_to_original
from .sd3_layout import diffusers_to_original
from .sd3_parts import ENCODER_PREFIXES, TRANSFORMER_PREFIX, VAE_PREFIX


@dataclass
class RandomSD3:
    transformer: torch.nn.Module
    vae: torch.nn.Module
    clip_l: torch.nn.Module
    clip_g: torch.nn.Module
    t5: torch.nn.Module


def transformer_config(kind: str = "sd3", size: str = "tiny") -> dict:
    """'sd3': SD 3 Medium's block (no q/k norm); 'mmditx': SD 3.5 Medium's (RMS q/k norm, dual attention)."""
    width, layers, heads = {"tiny": (64, 2, 1), "mid": (512, 8, 8)}[size]
    cfg = dict(sample_size=32, patch_size=2, in_channels=16, num_layers=layers, attention_head_dim=64,
               num_attention_heads=heads, joint_attention_dim=256 if size == "mid" else 128,
               caption_projection_dim=width, pooled_projection_dim=128, out_channels=16, pos_embed_max_size=32,
               dual_attention_layers=(), qk_norm=None)
    if kind == "mmditx":
        cfg.update(attention_head_dim=32, num_attention_heads=width // 32, qk_norm="rms_norm",
                   dual_attention_layers=tuple(range(layers // 2)))
    return cfg


def build_random_sd3(kind: str = "sd3", *, size: str = "tiny", seed: int = 0) -> RandomSD3:
    from diffusers import AutoencoderKL, SD3Transformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(**transformer_config(kind, size))
    vae = AutoencoderKL(block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=1, norm_num_groups=32,
                        latent_channels=16, sample_size=64, scaling_factor=1.5305, shift_factor=0.0609,
                        use_quant_conv=False, use_post_quant_conv=False)

    def clip(act: str) -> torch.nn.Module:
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=49408, hidden_size=64, intermediate_size=128, num_attention_heads=1, num_hidden_layers=2,
            max_position_embeddings=77, hidden_act=act, projection_dim=64, bos_token_id=0, eos_token_id=2,
            pad_token_id=1))

    clip_l, clip_g = clip("quick_gelu"), clip("gelu")
    joint = transformer.config.joint_attention_dim
    t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=joint, d_kv=16, d_ff=64, num_layers=2, num_heads=4,
                                 relative_attention_num_buckets=8, feed_forward_proj="gated-gelu",
                                 is_encoder_decoder=False, use_cache=False))
    return RandomSD3(*(m.eval() for m in (transformer, vae, clip_l, clip_g, t5)))


def _save(state: dict, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path))
    return path


def _clip_state(encoder: torch.nn.Module) -> dict:
    return {k: v for k, v in encoder.state_dict().items() if not k.endswith("position_ids")}


def _t5_state(encoder: torch.nn.Module) -> dict:
    # ComfyUI's t5xxl files hold shared.weight only (the encoder's embedding is the same tensor)
    return {k: v for k, v in encoder.state_dict().items() if k != "encoder.embed_tokens.weight"}


def save_diffusers(model: RandomSD3, folder: Path, *, t5: bool = True, shift: float = 3.0,
                   tokenizers: bool = True) -> Path:
    """A StableDiffusion3Pipeline folder (transformer, vae, three encoders and tokenizers, scheduler); without
    ``tokenizers`` the loader uses the shipped ones (quicker to load in tests)."""
    from .sd3 import shipped_tokenizers

    folder = Path(folder)
    model.transformer.save_pretrained(str(folder / "transformer"))
    model.vae.save_pretrained(str(folder / "vae"))
    encoders = [("text_encoder", model.clip_l), ("text_encoder_2", model.clip_g)]
    if t5:
        encoders.append(("text_encoder_3", model.t5))
    for sub, encoder in encoders:
        encoder.save_pretrained(str(folder / sub))
    for sub, tokenizer in zip(("tokenizer", "tokenizer_2", "tokenizer_3"), shipped_tokenizers(), strict=True):
        if tokenizers and (sub != "tokenizer_3" or t5):
            tokenizer.save_pretrained(str(folder / sub))
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": shift}))
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline"}))
    return folder


def original_transformer_state(model: RandomSD3) -> dict:
    return diffusers_to_original(model.transformer.state_dict())


def save_all_in_one(model: RandomSD3, path: Path, *, encoders: bool = True, t5: bool = True) -> Path:
    """Stability's single file: model.diffusion_model., first_stage_model. and (optionally) text_encoders.*."""
    state = {TRANSFORMER_PREFIX + k: v for k, v in original_transformer_state(model).items()}
    state.update(vae_to_original(model.vae.state_dict(), model.vae.config))  # adds first_stage_model.
    if encoders:
        parts = {"clip_l": _clip_state(model.clip_l), "clip_g": _clip_state(model.clip_g)}
        if t5:
            parts["t5xxl"] = _t5_state(model.t5)
        for role, part in parts.items():
            state.update({ENCODER_PREFIXES[role] + k: v for k, v in part.items()})
    return _save(state, Path(path))


def save_split(model: RandomSD3, root: Path, *, t5: bool = True, name: str = "sd3_tiny",
               vae_layout: str = "diffusers") -> dict[str, Path]:
    """ComfyUI's folders: models/diffusion_models (Stability's names), models/text_encoders, models/vae."""
    root = Path(root)
    out = {"transformer": _save(original_transformer_state(model), root / "diffusion_models" / f"{name}.safetensors")}
    out["clip_l"] = _save(_clip_state(model.clip_l), root / "text_encoders" / "clip_l.safetensors")
    out["clip_g"] = _save(_clip_state(model.clip_g), root / "text_encoders" / "clip_g.safetensors")
    if t5:
        out["t5xxl"] = _save(_t5_state(model.t5), root / "text_encoders" / "t5xxl_fp16.safetensors")
    vae = model.vae.state_dict()
    if vae_layout == "original":
        vae = {k[len(VAE_PREFIX):]: v for k, v in vae_to_original(vae, model.vae.config).items()}
    out["vae"] = _save(vae, root / "vae" / "sd3_vae.safetensors")
    return out
