"""The initial noise of a run: the seed's draw, optionally moved toward a variation seed's.

AUTOMATIC1111's "Variation seed" and "Variation seed strength": the noise of the
seed and the noise of the variation seed, each from its own generator, are joined
by spherical interpolation (slerp). Strength 0 is the seed's noise, 1 the variation
seed's. The seed's generator is the one the run keeps drawing from afterwards
(ancestral samplers, RePaint), so a variation changes only the starting point.
"""

from __future__ import annotations

import torch

# Above this mean cosine the two draws are nearly parallel and slerp divides by ~0: interpolate linearly.
_PARALLEL = 0.9995


def slerp(t: float, low: torch.Tensor, high: torch.Tensor, dim: int) -> torch.Tensor:
    """Spherical interpolation from ``low`` (t = 0) to ``high`` (t = 1), along ``dim``.

    Each slice along ``dim`` is treated as its own vector. AUTOMATIC1111 draws a
    [C, H, W] latent and interpolates along its dimension 1 (the height), column by
    column; callers pass that axis to land on the same noise.
    """
    low_unit = low / low.norm(dim=dim, keepdim=True)
    high_unit = high / high.norm(dim=dim, keepdim=True)
    dot = (low_unit * high_unit).sum(dim, keepdim=True)
    if float(dot.mean()) > _PARALLEL:
        return (1 - t) * low + t * high
    omega = dot.clamp(-1, 1).acos()
    sin_omega = omega.sin()
    return (((1 - t) * omega).sin() / sin_omega) * low + ((t * omega).sin() / sin_omega) * high


def initial_noise(
    shape: tuple[int, ...],
    generator: torch.Generator,
    variation_seed: int = 0,
    variation_strength: float = 0.0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise of ``shape`` for the start of a run.

    Draws from ``generator`` (seeded with the run's seed) exactly as a run without a
    variation does, so strength 0 gives the same bits. With a strength above 0 the
    variation seed's noise comes from a generator of its own; ``generator`` advances
    by the same one draw either way.
    """
    noise = _draw(shape, generator)
    if variation_strength == 0:
        return noise.to(device=device, dtype=dtype)
    variation = _draw(shape, torch.Generator(generator.device).manual_seed(variation_seed))
    if variation_strength != 1:  # at 1, slerp's end point without its rounding
        # The latent is [1, C, H, W]; AUTOMATIC1111 interpolates each [C, H, W] draw along H.
        variation = slerp(variation_strength, noise, variation, dim=-2)
    return variation.to(device=device, dtype=dtype)


def _draw(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """float32 noise on the generator's device, as samplers.randn_like draws it (so the bits agree)."""
    return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
