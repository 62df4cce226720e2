"""What the masked region starts from before it is noised: AUTOMATIC1111's "Masked content".

- original: the init image as it is (the studio's behaviour before this choice existed);
- fill: the masked pixels painted with the colours around them, then encoded;
- latent noise: the masked part of the encoded latent replaced by the run's initial noise;
- latent nothing: the masked part of the encoded latent set to zero.

As in AUTOMATIC1111 (modules/processing.py, StableDiffusionProcessingImg2Img.init), the three
choices other than "original" start from the filled picture, and the two latent ones then
replace the masked latent, weighted by the latent mask. The img2img noise is added on top of
the result (``start + noise * sigma``), so "latent noise" starts the masked area at noise of
std ``1 + sigma``, as AUTOMATIC1111's does (it draws the same seed's noise for both).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .request import MASKED_CONTENTS


def fill_masked(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] with the masked area (mask 1) painted from the unmasked colours around it.

    Push-pull (Gortler et al. 1996, "The Lumigraph", sec. 3.4.1): the known pixels, weighted by
    1 - mask, are averaged down a pyramid of halvings; going back up, each level keeps its own
    weighted colour and takes what it lacks from the coarser level. A far-away hole gets the blurred
    average of everything around it, a pixel next to known ones their colour: a cheap counterpart of
    AUTOMATIC1111's repeated Gaussian blurs, linear in the number of pixels. Unmasked pixels are kept.
    """
    rgb = torch.from_numpy(np.ascontiguousarray(image[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    known = torch.from_numpy(np.ascontiguousarray(1 - np.clip(mask, 0, 1), dtype=np.float32))[None, None]
    if float(known.max()) <= 0:  # nothing known to fill from: a neutral grey
        return np.full_like(image[..., :3], 128)
    levels = [(rgb * known, known)]  # premultiplied colour, weight
    while min(levels[-1][1].shape[-2:]) > 1:
        colour, weight = levels[-1]
        levels.append((F.avg_pool2d(colour, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    colour, weight = levels[-1]
    filled = colour / weight.clamp(min=1e-8)
    # A coarsest level with no known pixel at all cannot happen (some weight is > 0 and averages keep it).
    for colour, weight in reversed(levels[:-1]):
        coarse = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        filled = colour + (1 - weight) * coarse
    out = np.rint(filled[0].permute(1, 2, 0).numpy()).clip(0, 255).astype(np.uint8)
    keep = mask <= 0
    out[keep] = image[..., :3][keep]
    return out


def start_latent(init_latent: torch.Tensor, latent_mask: torch.Tensor, content: str,
                 noise: torch.Tensor) -> torch.Tensor:
    """The img2img start before noising: ``init_latent`` with its masked part replaced as ``content`` says.

    ``latent_mask`` is 1 where the model paints (latent size); ``noise`` is the run's initial noise draw.
    """
    if content not in MASKED_CONTENTS:
        raise ValueError(f"unknown masked content {content!r}; choose one of {', '.join(MASKED_CONTENTS)}")
    if content == "latent_noise":
        return init_latent * (1 - latent_mask) + noise * latent_mask
    if content == "latent_nothing":
        return init_latent * (1 - latent_mask)
    return init_latent  # original, fill (filled in pixels, before encoding)
