"""Inpainting by blending the known region at every step (Palette / RePaint style).

The mask is 1 where the model paints and 0 where the known latent is kept;
values in between feather the edge.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .denoisers import Cond, Denoiser, append_dims


def feather_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    """Soften a [H, W] mask in [0, 1] with a Gaussian blur of ``radius`` pixels (sigma = radius / 2)."""
    m = np.clip(mask.astype(np.float32), 0, 1)
    if radius <= 0:
        return m
    sigma = radius / 2
    k = int(np.ceil(3 * sigma))
    xs = np.arange(-k, k + 1, dtype=np.float32)
    kernel = np.exp(-(xs**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    t = torch.from_numpy(m)[None, None]
    kh = torch.from_numpy(kernel).view(1, 1, 1, -1)
    t = F.conv2d(F.pad(t, (k, k, 0, 0), mode="replicate"), kh)
    t = F.conv2d(F.pad(t, (0, 0, k, k), mode="replicate"), kh.transpose(2, 3))
    return t[0, 0].numpy().clip(0, 1)


def mask_to_latent(mask: np.ndarray, latent_hw: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Resize a [H, W] pixel mask to [1, 1, h, w] latent resolution (area average)."""
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    if tuple(t.shape[-2:]) != tuple(latent_hw):
        t = F.interpolate(t, size=latent_hw, mode="area")
    return t.clamp(0, 1).to(device)


def inpainting_denoiser(denoiser: Denoiser, known: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> Denoiser:
    """Re-noise the known region to the current sigma before denoising, and paste it into x0.

    ``noise`` is the run's initial noise: using the same draw at every level keeps
    the known region on one consistent noising path, so a deterministic sampler
    lands exactly on ``known`` where the mask is 0.
    """

    def inpaint(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        s = append_dims(sigma.to(x.dtype), x.ndim)
        noisy_known = known + s * noise
        x = mask * x + (1 - mask) * noisy_known
        x0 = denoiser(x, sigma, cond)
        return mask * x0 + (1 - mask) * known

    return inpaint


def composite(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paste the original pixels back outside the mask: exact where the mask is 0."""
    m = mask.astype(np.float32)[..., None]
    out = m * generated.astype(np.float32) + (1 - m) * original.astype(np.float32)
    keep = mask <= 0
    out = np.round(out).astype(np.uint8)
    out[keep] = original[keep]
    return out
