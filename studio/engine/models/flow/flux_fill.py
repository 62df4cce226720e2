"""Flux.1 Fill's extra input: the masked image's latent and the pixel mask, joined to every token.

As FluxFillPipeline builds it: the mask is binarized (1 = paint), the masked image is the init image in
[-1, 1] with the painted area set to 0, encoded by the VAE; the full-resolution mask is cut into the
VAE's 8x8 pixel blocks, each block's 64 values becoming 64 channels at latent size. Both are kept as
one latent-shaped tensor [1, 16 + 64, h, w] (the engine's cond is batch-first and spatial) and packed
into 2x2 tokens beside the noisy latent's in ``FluxModel.velocity``: 64 + 64 + 256 = 384 inputs a token.
"""

from __future__ import annotations

import torch

from ...request import RequestError


def mask_to_channels(mask: torch.Tensor, scale: int) -> torch.Tensor:
    """[1, 1, H, W] -> [1, scale * scale, H / scale, W / scale]: each latent pixel's block of mask pixels."""
    b, _, height, width = mask.shape
    h, w = height // scale, width // scale
    blocks = mask[:, 0].reshape(b, h, scale, w, scale).permute(0, 2, 4, 1, 3)
    return blocks.reshape(b, scale * scale, h, w)


def fill_conditioning(model, mask: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """[1, C + scale^2, h, w] for Flux Fill from the binary mask [1, 1, H, W] and masked image [1, 3, H, W]."""
    latent = model.encode_unit(masked)
    if not torch.isfinite(latent).all():
        raise RequestError("init_image", "encoding the masked image for Flux Fill gave non-finite values")
    blocks = mask_to_channels(mask.float(), model.info.latent_scale).to(latent.device, latent.dtype)
    return torch.cat([latent, blocks], dim=1)
