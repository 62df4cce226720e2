"""Nearly free step previews: a linear map from SD latents to RGB.

Each family's VAE latent space is close enough to linear in colour that a 4x3
matrix (plus a bias) gives a recognisable picture of the x0 prediction at latent
resolution; the factors are the widely used ones fitted by the ComfyUI and
AUTOMATIC1111 projects for SD 1.x/2.x and for SDXL. A tiny decoder (TAESD)
gives sharper previews when its weights are on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..base import unit_to_image

LATENT_RGB = {
    "sd1": ([[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
             [-0.2120, -0.2616, -0.7177]], [0.0, 0.0, 0.0]),
    "sdxl": ([[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
              [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011]),
}
LATENT_RGB["sd2"] = LATENT_RGB["sd1"]  # SD 2.x kept SD 1.x's VAE
LATENT_RGB["sdxl_refiner"] = LATENT_RGB["sdxl"]  # the refiner shares the base's VAE


class LinearPreview:
    """latent x0 [B, 4, h, w] -> uint8 [h, w, 3] by one small matrix product."""

    def __init__(self, family: str, device: torch.device):
        factors, bias = LATENT_RGB.get(family, LATENT_RGB["sd1"])
        self.factors = torch.tensor(factors, dtype=torch.float32, device=device)
        self.bias = torch.tensor(bias, dtype=torch.float32, device=device)

    def __call__(self, x0: torch.Tensor) -> np.ndarray:
        rgb = torch.einsum("chw,cr->rhw", x0[0, :4].float(), self.factors) + self.bias[:, None, None]
        return unit_to_image(rgb.unsqueeze(0))


class TinyDecoderPreview:
    """TAESD / TAESDXL (a diffusers AutoencoderTiny folder): sharper previews, still cheap."""

    def __init__(self, folder: Path, device: torch.device, dtype: torch.dtype):
        from diffusers import AutoencoderTiny

        self.decoder = AutoencoderTiny.from_pretrained(str(folder), local_files_only=True).to(device, dtype).eval()
        self.dtype = dtype

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor) -> np.ndarray:
        # AutoencoderTiny works in the same scaled latent space the sampler uses.
        return unit_to_image(self.decoder.decode(x0[:1].to(self.dtype)).sample)


def taesd_search_dirs(model_path: Path) -> list[Path]:
    """Where TAESD weights usually sit: beside the model, the AUTOMATIC1111 / ComfyUI folders, the hub cache."""
    from .discovery import hf_hub_cache

    model_path = Path(model_path)
    base = model_path.parent if model_path.is_file() else model_path
    dirs = [base, base.parent]
    for up in (base.parent, base.parent.parent):  # <app>/models/Stable-diffusion -> <app>/models/VAE-approx
        dirs += [up / "VAE-approx", up / "vae_approx", up / "models" / "VAE-approx", up / "models" / "vae_approx"]
    return dirs + [hf_hub_cache()]


def find_taesd(family: str, search: list[Path]) -> Path | None:
    """A diffusers AutoencoderTiny folder for the family (taesd for SD 1.x/2.x, taesdxl for SDXL), if on disk."""
    name = "taesdxl" if family in ("sdxl", "sdxl_refiner") else "taesd"
    for base in search:
        candidates = [base / name]
        hub = base / f"models--madebyollin--{name}" / "snapshots"
        if hub.is_dir():
            candidates += sorted(hub.iterdir(), reverse=True)
        for folder in candidates:
            if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
                return folder
    return None
