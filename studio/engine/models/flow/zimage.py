"""Z-Image (Tongyi-MAI): a single-stream 6B flow transformer reading prompts through Qwen3-4B.

Turbo is the guidance-distilled model (8 network calls, CFG 1: no unconditional pass, as its card says);
the base model is the same network run with more steps and real CFG. Both use Flux's 16-channel VAE and
a fixed timestep shift of 3.

The transformer's own convention, read from diffusers' ZImagePipeline: it takes the timestep as
``1 - t`` (t the flow time, 1 = pure noise) and predicts ``x0 - noise``; the pipeline negates the output
before its Euler step. So the studio's velocity (noise - x0) is the negated output at ``1 - t``. Images
and captions go in as lists (one latent [C, 1, h, w] and one caption [tokens, width] per image).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ...devices import pick_device
from ..base import Recommended
from ..errors import ModelLoadError
from ..sd.load import pick_weights_dtype, require_sd_libraries
from .model import FlowModel
from .parts import ModelFiles
from .zimage_layout import encoder_from_path, split_parts, vae_from_path
from .zimage_prompts import QwenPromptEncoder, caption_pair, captions, load_qwen_tokenizer

SCALING_FACTOR, SHIFT_FACTOR = 0.3611, 0.1159  # Flux's VAE
TIMESTEP_SHIFT = 3.0  # the pipelines' scheduler_config.json and ComfyUI's sampling settings
DEFAULT_SIZE = (1024, 1024)
# Turbo's card: 8 network calls with guidance 0 in diffusers' terms (= CFG 1 here: diffusers' guidance g is
# cond + g (cond - uncond), the studio's scale s is uncond + s (cond - uncond), so s = g + 1). The base
# model's card: 28-50 steps, guidance 3-5.
RECOMMENDED = {"turbo": Recommended(steps=8, cfg_scale=1.0), "base": Recommended(steps=28, cfg_scale=5.0)}


class ZImageModel(FlowModel):
    def __init__(self, *, transformer: torch.nn.Module, prompts: QwenPromptEncoder, vae: torch.nn.Module,
                 name: str, variant: str, device: torch.device, weights_dtype: torch.dtype,
                 shift: float = TIMESTEP_SHIFT):
        from ...flow import FlowSchedule

        vae_config = getattr(vae, "config", {})
        super().__init__(
            name=name, family="zimage", vae=vae, schedule=FlowSchedule(shift=shift), device=device,
            weights_dtype=weights_dtype, default_size=DEFAULT_SIZE, recommended=RECOMMENDED[variant],
            scaling_factor=vae_config.get("scaling_factor", SCALING_FACTOR) or SCALING_FACTOR,
            shift_factor=vae_config.get("shift_factor", SHIFT_FACTOR) or SHIFT_FACTOR, patch_size=2,
            preview="flux")
        self.transformer = transformer
        self.prompts = prompts
        self.variant = variant

    def encode_prompt(self, prompt: str, negative_prompt: str, width: int, height: int, clip_skip: int = 1):
        self.use("text_encoders")
        return caption_pair(self.prompts.encode(prompt), self.prompts.encode(negative_prompt))

    def memory_groups(self) -> dict[str, list[torch.nn.Module]]:
        return {"text_encoders": [self.prompts.encoder], "transformer": [self.transformer],
                "vae": [self.codec.vae]}

    @torch.no_grad()
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
        dtype = self.weights_dtype
        latents = list(x.to(dtype).unsqueeze(2).unbind(0))  # [C, frames=1, h, w] each
        caps = [c.to(dtype) for c in captions(cond)]
        out = self.transformer(latents, (1 - t).float(), caps, return_dict=False)[0]
        return -torch.stack([o.float() for o in out]).squeeze(2)


def variant_of(files: ModelFiles) -> str:
    """"turbo" or "base": what detection said, else the name (Z-Image-Turbo, z_image_turbo_bf16, ...)."""
    if files.variant in RECOMMENDED:
        return files.variant
    return "turbo" if "turbo" in files.display_name.lower() else "base"


def load_zimage(files: ModelFiles, device: str | torch.device = "cpu",
                dtype: str | torch.dtype | None = None) -> ZImageModel:
    """A Z-Image model from a diffusers folder, an all-in-one file, or ComfyUI's split files."""
    require_sd_libraries()
    root = Path(files.transformer).expanduser()
    if not root.exists():
        raise ModelLoadError(f"no Z-Image model at {root}")
    dev = pick_device(device)
    weights_dtype = pick_weights_dtype(dev, dtype)
    name = files.display_name
    if root.is_dir():
        # A pipeline folder, or a lone transformer folder (its config beside the weights) with the parts given.
        lone = (root / "config.json").is_file() and not (root / "transformer").is_dir()
        transformer = _pretrained("transformer", root if lone else root / "transformer", weights_dtype, name)
        if lone and ("qwen3" not in files.text_encoders or files.vae is None):
            raise ModelLoadError(f"{name} is a Z-Image transformer folder alone: give its Qwen3 text encoder "
                                 "(--text-encoder) and Flux's VAE (--vae)")
        encoder = _encoder(Path(files.text_encoders.get("qwen3", root / "text_encoder")), weights_dtype, name)
        vae = _vae(Path(files.vae or root / "vae"), weights_dtype, name)
        tokenizer = load_qwen_tokenizer(root / "tokenizer")
        shift = _scheduler_shift(root / "scheduler" / "scheduler_config.json")
    else:  # ComfyUI's diffusion-model file (encoder and VAE beside it) or an all-in-one checkpoint
        transformer, encoder, vae = split_parts(root, files, weights_dtype)
        tokenizer, shift = load_qwen_tokenizer(), TIMESTEP_SHIFT
    transformer, encoder = transformer.eval(), encoder.eval()  # in CPU memory until ``place``
    return ZImageModel(transformer=transformer, prompts=QwenPromptEncoder(tokenizer, encoder, dev),
                       vae=vae.eval(), name=name, variant=variant_of(files), device=dev,
                       weights_dtype=weights_dtype, shift=shift)


def _pretrained(part: str, folder: Path, dtype: torch.dtype, name: str) -> torch.nn.Module:
    from diffusers import AutoencoderKL, ZImageTransformer2DModel

    cls = {"transformer": ZImageTransformer2DModel, "vae": AutoencoderKL}[part]
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{name}: {folder} has no config.json; is it a Z-Image pipeline folder?")
    try:
        return cls.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{name}: the {part} in {folder} cannot be loaded ({str(exc)[:300]})") from exc


def _encoder(path: Path, dtype: torch.dtype, name: str) -> torch.nn.Module:
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelLoadError(f"{name}: no Qwen3 text encoder folder at {path}")
    if not path.exists():
        raise ModelLoadError(f"{name}: no Qwen3 text encoder at {path}")
    try:
        return encoder_from_path(path, dtype)
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ModelLoadError):
            raise
        raise ModelLoadError(f"{name}: the Qwen3 text encoder in {path} cannot be loaded ({str(exc)[:300]})") from exc


def _vae(path: Path, dtype: torch.dtype, name: str) -> torch.nn.Module:
    if path.is_file():
        return vae_from_path(path, dtype)
    return _pretrained("vae", path, dtype, name)


def _scheduler_shift(path: Path) -> float:
    try:
        return float(json.loads(path.read_text()).get("shift", TIMESTEP_SHIFT))
    except (OSError, ValueError, TypeError):
        return TIMESTEP_SHIFT
