"""Batched generation with the engine's pieces, for sample grids, the judge and benchmarks.

Each image's starting noise comes from its own ``torch.Generator`` seeded with
its seed, like the runner draws it, so a seed here gives the runner's picture
(up to batch-size rounding) with the deterministic samplers.
"""

from __future__ import annotations

import numpy as np
import torch

from studio.engine.guidance import classifier_free_guidance, classifier_guidance
from studio.engine.models.base import unit_to_image
from studio.engine.samplers import get_sampler, randn_like
from studio.engine.schedules import sampling_sigmas


@torch.no_grad()
def generate(
    model, prompts: list[str], seeds: list[int], *, steps: int = 20, cfg_scale: float = 4.0,
    classifier_scale: float = 0.0, sampler: str = "dpmpp_2m", spacing: str = "karras", negative: str = "",
    final: bool = True,
) -> list[np.ndarray]:
    """One uint8 image per (prompt, seed) pair; ``final`` runs ``decode`` (SR), else the base output."""
    if len(prompts) != len(seeds):
        raise ValueError(f"got {len(prompts)} prompts but {len(seeds)} seeds")
    size = model.info.default_size[1] // model.info.latent_scale
    conds, unconds, noise = [], [], []
    for p, s in zip(prompts, seeds, strict=True):
        c, u = model.encode_prompt(p, negative, size, size)
        conds.append(c)
        unconds.append(u)
        g = torch.Generator("cpu").manual_seed(s)
        noise.append(randn_like(torch.empty(1, 3, size, size), g))
    cond = {k: torch.cat([c[k] for c in conds]) for k in conds[0]}
    uncond = {k: torch.cat([u[k] for u in unconds]) for k in unconds[0]}
    sigmas = sampling_sigmas(model.schedule, steps, spacing)
    denoise = model.denoiser()
    if cfg_scale != 1.0:
        denoise = classifier_free_guidance(denoise, uncond, cfg_scale)
    if classifier_scale:
        grad = model.classifier_grad()
        if grad is None:
            raise ValueError("this model has no classifier; use classifier_scale=0")
        denoise = classifier_guidance(denoise, grad, classifier_scale)
    x = torch.cat(noise).to(model.device) * sigmas[0]
    spec = get_sampler(sampler)
    x = spec.fn(denoise, x, sigmas, cond=cond, generator=torch.Generator("cpu").manual_seed(seeds[0]))
    out = []
    for i, s in enumerate(seeds):
        xi = x[i : i + 1]
        if final:
            out.append(model.decode(xi, generator=torch.Generator("cpu").manual_seed((s + 1) % 2**63)))
        else:
            out.append(unit_to_image(xi))
    return out


def grid(images: list[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Tile equally sized uint8 images into one picture with a light grey gutter."""
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 200, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    return canvas
