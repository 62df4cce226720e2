"""The extra input of inpainting checkpoints (SD 1.5 / SDXL inpainting, 9-channel UNets).

Such a UNet was trained as a conditional model, the way Palette (Saharia et al. 2022)
conditions on the known image: its input is ``cat([x_scaled, mask, masked_image_latent])``
on the channel axis. The mask is 1 where the model paints, at latent size; the masked
image is the init image in [-1, 1] with the painted area set to 0 (grey), encoded by the
VAE. The same tensor goes with the prompt and with the negative prompt.

Conventions follow diffusers' StableDiffusionInpaintPipeline and AUTOMATIC1111's
``inpainting_image_conditioning``: the (feathered) mask is binarized at 0.5 before use and
shrunk to latent size by nearest-neighbour sampling. Without an init image (txt2img), or
without a mask, the whole picture is "to paint": a full mask and an all-grey masked image,
as AUTOMATIC1111 feeds these models in txt2img.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .inpaint import feather_mask
from .models.base import DiffusionModel, image_to_unit
from .request import GenerationRequest, RequestError

CONCAT_KEY = "concat"  # the cond entry StableDiffusionModel joins to the UNet's input


def binary_pixel_mask(mask: np.ndarray | None, feather: float, height: int, width: int) -> torch.Tensor:
    """[1, 1, H, W] float mask of 0 and 1: the request's feathered mask at 0.5, or all ones without a mask."""
    if mask is None:
        return torch.ones(1, 1, height, width)
    soft = torch.from_numpy(np.ascontiguousarray(feather_mask(mask, feather)))[None, None]
    return (soft >= 0.5).float()


def inpainting_conditioning(model: DiffusionModel, request: GenerationRequest) -> dict[str, torch.Tensor] | None:
    """{"concat": [1, 5, h, w]} (mask, masked image latent) for an inpainting model, None for any other."""
    if not model.info.inpainting:
        return None
    h, w = request.height, request.width
    mask = binary_pixel_mask(request.mask, request.mask_feather, h, w)
    image = None if request.init_image is None else image_to_unit(request.init_image)
    # txt2img: an all-grey picture, all of it to paint
    masked = torch.zeros(1, 3, h, w) if image is None else image * (mask < 0.5)
    own = getattr(model, "inpainting_concat", None)
    if own is not None:  # a model that joins the mask and masked image its own way (Flux Fill, Palette)
        # ``image`` (None without one) is the whole init image, for a model that reads what lies under
        # the mask too: the emoji colouriser takes the luminance of all of it (models/palette.py).
        return own(mask, masked, image)
    latent = model.encode_unit(masked)
    if not torch.isfinite(latent).all():
        raise RequestError("init_image", "encoding the masked image for the inpainting model gave non-finite values")
    latent_mask = F.interpolate(mask, size=latent.shape[-2:], mode="nearest").to(latent.device, latent.dtype)
    return {CONCAT_KEY: torch.cat([latent_mask, latent], dim=1)}
