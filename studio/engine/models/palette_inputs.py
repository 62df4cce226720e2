"""The known image a Palette network reads beside its noisy input: one layout for training and the studio.

Palette (Saharia et al. 2022) trains one conditional diffusion model for several
image-to-image tasks by joining the known image to the network's input on the
channel axis. Ours has five such channels at 32 px, all in [-1, 1] like the picture:

    0-2  the known RGB, 0 (grey) where the model paints
    3    the mask: 1 where the model paints, 0 where the picture is known
    4    the luminance to colour in (colourisation), 0 otherwise

Colourisation paints the whole picture (mask all ones, no known RGB) and gives
the grey picture's luminance; inpainting gives the known RGB and the hole.
"""

from __future__ import annotations

import torch

CONCAT_CHANNELS = 5
# ITU-R BT.601 luma weights: what a "grey" version of a picture keeps of it
LUMA = (0.299, 0.587, 0.114)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [-1, 1] -> [B, 1, H, W] luma in [-1, 1] (a weighted sum keeps the range)."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device)[None, :, None, None]
    return (x * w).sum(1, keepdim=True)


def colourise_input(image: torch.Tensor) -> torch.Tensor:
    """The concat channels for colouring in ``image`` [B, 3, H, W] (its colour is not read, only its luma)."""
    b, _, h, w = image.shape
    return torch.cat([image.new_zeros(b, 3, h, w), image.new_ones(b, 1, h, w), luminance(image)], dim=1)


def inpaint_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The concat channels for repainting ``image`` where the binary ``mask`` [B, 1, H, W] is 1."""
    b, _, h, w = image.shape
    return torch.cat([image * (1 - mask), mask, image.new_zeros(b, 1, h, w)], dim=1)
