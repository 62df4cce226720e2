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
# The 16-channel VAEs of SD 3.x and Flux (Z-Image and Flux Fill reuse Flux's), as fitted for ComfyUI's previews.
LATENT_RGB["sd3"] = (
    [[-0.0922, -0.0175, 0.0749], [0.0311, 0.0633, 0.0954], [0.1994, 0.0927, 0.0458], [0.0856, 0.0339, 0.0902],
     [0.0587, 0.0272, -0.0496], [-0.0006, 0.1104, 0.0309], [0.0978, 0.0306, 0.0427], [-0.0042, 0.1038, 0.1358],
     [-0.0194, 0.0020, 0.0669], [-0.0488, 0.0130, -0.0268], [0.0922, 0.0988, 0.0951], [-0.0278, 0.0524, -0.0542],
     [0.0332, 0.0456, 0.0895], [-0.0069, -0.0030, -0.0810], [-0.0596, -0.0465, -0.0293],
     [-0.1448, -0.1463, -0.1189]], [0.2394, 0.2135, 0.1925])
LATENT_RGB["flux"] = (
    [[-0.0346, 0.0244, 0.0681], [0.0034, 0.0210, 0.0687], [0.0275, -0.0668, -0.0433], [-0.0174, 0.0160, 0.0617],
     [0.0859, 0.0721, 0.0329], [0.0004, 0.0383, 0.0115], [0.0405, 0.0861, 0.0915], [-0.0236, -0.0185, -0.0259],
     [-0.0245, 0.0250, 0.1180], [0.1008, 0.0755, -0.0421], [-0.0515, 0.0201, 0.0011], [0.0428, -0.0012, -0.0036],
     [0.0817, 0.0765, 0.0749], [-0.1264, -0.0522, -0.1103], [-0.0280, -0.0881, -0.0499],
     [-0.1262, -0.0982, -0.0778]], [-0.0329, -0.0718, -0.0851])
LATENT_RGB["sd2"] = LATENT_RGB["sd1"]  # SD 2.x kept SD 1.x's VAE
LATENT_RGB["sdxl_refiner"] = LATENT_RGB["sdxl"]  # the refiner shares the base's VAE


class LinearPreview:
    """latent x0 [B, C, h, w] -> uint8 [h, w, 3] by one small matrix product (C = 4 or 16)."""

    def __init__(self, family: str, device: torch.device):
        factors, bias = LATENT_RGB.get(family, LATENT_RGB["sd1"])
        self.factors = torch.tensor(factors, dtype=torch.float32, device=device)
        self.bias = torch.tensor(bias, dtype=torch.float32, device=device)

    def __call__(self, x0: torch.Tensor) -> np.ndarray:
        channels = self.factors.shape[0]
        rgb = torch.einsum("chw,cr->rhw", x0[0, :channels].float(), self.factors) + self.bias[:, None, None]
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
