"""How big a request may be, per model family: checked before anything is allocated.

Torch-free, like request.py, so the window and the command line can read the same limits.
"""

from __future__ import annotations

# Largest width or height in pixels, per family. Stable Diffusion 1.x/2.x were trained at 512-768 px:
# past 2048 they repeat subjects and their attention memory grows with the fourth power of the side
# (AUTOMATIC1111's sliders stop at 2048 too). SDXL (1024 px) gets twice that. The embedded cascade
# was trained at 32 -> 64 px; 1024 is already far beyond anything it draws well. The toy model is
# analytic and pixel-space: 2048 keeps a run's step history within a few GiB.
MAX_SIDE = {"toy": 2048, "embedded": 1024, "sd1": 2048, "sd2": 2048, "sdxl": 4096, "sdxl_refiner": 4096}
DEFAULT_MAX_SIDE = 2048  # families without an entry (new ones, test doubles)

# RePaint passes per step when inpainting. Lugmayr et al. (2022) found about 10 resamplings enough and
# saw no gain past 20; each pass is one more network evaluation per step, so 20 already makes a run
# 21 times as long.
MAX_RESAMPLE = 20

# Mask feather radius in pixels. The blur kernel spans three radii on each side: past 512 px it
# flattens any mask the studio allows into a uniform grey, at a cost that grows with the radius.
MAX_FEATHER = 512

# Classifier-free and classifier guidance scales. Past a few tens the picture only saturates (the
# panel stops CFG at 30, as AUTOMATIC1111 does); the bound is for typed or parsed numbers such as
# 2**64, which pass a finiteness check but overflow when torch turns them into a tensor scalar.
MAX_GUIDANCE = 1000.0


def max_side(family: str) -> int:
    """The largest width or height, in pixels, that a model of ``family`` accepts."""
    return MAX_SIDE.get(family, DEFAULT_MAX_SIDE)

# What a family's networks need at their peak, in bytes per latent element: deliberately low (about
# half of what was seen), so a run that might fit is never refused; one that does not fit after all
# still ends in the out-of-memory message. Stable Diffusion's UNet with scaled-dot-product attention
# and batch 2 (guidance) took ~1.5 GiB at 512 px (16k latent elements) in fp16.
NETWORK_BYTES_PER_LATENT = {"toy": 64, "embedded": 2048, "sd1": 32768, "sd2": 32768, "sdxl": 49152,
                            "sdxl_refiner": 49152}
FLOAT_BYTES = 4  # the sampler state stays float32 whatever the weights' precision


def run_memory_bytes(width: int, height: int, steps: int, latent_channels: int, latent_scale: int,
                     family: str, tile_size: int = 0) -> tuple[int, int]:
    """(host bytes, device bytes) a run needs at least: the step history the runner keeps on the host
    (the state and the sampler's carry after every step, so that any step can be branched from) and the
    decoded image; the latents and the networks' working memory on the device (a tile's, with ``tile_size``)."""
    latent = latent_channels * (height // latent_scale) * (width // latent_scale)
    history = 2 * latent * FLOAT_BYTES * (steps + 1)
    image = width * height * 3 * FLOAT_BYTES * 2  # the decoded image in float and the pasted composite
    side = (lambda n: min(n, tile_size)) if tile_size else (lambda n: n)
    network = latent_channels * (side(height) // latent_scale) * (side(width) // latent_scale)
    device = 4 * latent * FLOAT_BYTES + network * NETWORK_BYTES_PER_LATENT.get(family, 0)
    return history + image, device
