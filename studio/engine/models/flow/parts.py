"""Where each part of a flow model lives on disk: what the loader finds and a family's builder reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Text encoder roles, named as ComfyUI's loaders and users' file names call them.
ENCODER_ROLES = ("clip_l", "clip_g", "t5xxl", "qwen3")


@dataclass(frozen=True)
class ModelFiles:
    """One flow model's parts.

    ``transformer`` is the diffusion model: a diffusers pipeline folder (its parts then default to the
    folder's own subfolders), an all-in-one checkpoint (its parts default to the encoders and VAE inside
    it), or a diffusion-model-only file (ComfyUI's models/diffusion_models, models/unet) whose encoders
    and VAE are separate files. An entry in ``text_encoders`` or ``vae`` overrides what the transformer
    path holds.
    """

    family: str  # "sd3", "flux", "zimage"
    transformer: Path
    text_encoders: Mapping[str, Path] = field(default_factory=dict)  # role -> file or folder
    vae: Path | None = None
    variant: str = ""  # what detection found: "dev", "schnell", "fill", "large", "medium", "turbo", ...
    name: str = ""  # what the model picker shows; the file or folder stem when empty

    @property
    def display_name(self) -> str:
        return self.name or self.transformer.stem
