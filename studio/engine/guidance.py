"""Guidance as wrappers around a denoiser.

Each function takes a denoiser and returns a denoiser with the same contract,
so samplers never know guidance exists.
"""

from __future__ import annotations

import torch

from .denoisers import Cond, Denoiser, append_dims
from .models.base import ClassifierGrad


def _cat_cond(a: Cond, b: Cond) -> Cond:
    if a is None and b is None:
        return None
    if a is None or b is None or a.keys() != b.keys():
        raise ValueError("conditional and unconditional inputs must carry the same keys")
    return {k: torch.cat([a[k], b[k]]) for k in a}


def _repeat_cond(cond: Cond, batch: int) -> Cond:
    """Broadcast a batch-1 conditioning to ``batch`` rows (a no-op when it already matches)."""
    if cond is None:
        return None
    return {k: v if v.shape[0] == batch else v.expand(batch, *v.shape[1:]) for k, v in cond.items()}


def _per_sample_std(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).std(dim=1).reshape(-1, *([1] * (x.ndim - 1)))


def classifier_free_guidance(
    denoiser: Denoiser,
    uncond: Cond,
    scale: float,
    rescale: float = 0.0,
    interval: tuple[float, float] | None = None,
) -> Denoiser:
    """Classifier-free guidance (Ho & Salimans 2022) with one batched call.

    rescale: Lin et al. (2023, eq. 15-16) match the guided x0's std to the
    conditional one's, blended by ``rescale`` in [0, 1].
    interval: (sigma_lo, sigma_hi); guidance applies only for sigma_lo < sigma <= sigma_hi
    (Kynkaanniemi et al. 2024). Elsewhere the plain conditional denoiser runs, in one call.
    """

    def guided(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        s = float(sigma.max())
        outside = interval is not None and not (interval[0] < s <= interval[1])
        if scale == 1.0 or outside:
            return denoiser(x, sigma, cond)
        b = x.shape[0]
        both = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), _cat_cond(
            _repeat_cond(cond, b), _repeat_cond(uncond, b)))
        x0_c, x0_u = both[:b], both[b:]
        x0 = x0_u + scale * (x0_c - x0_u)
        if rescale > 0:
            rescaled = x0 * (_per_sample_std(x0_c) / _per_sample_std(x0).clamp(min=1e-8))
            x0 = rescale * rescaled + (1 - rescale) * x0
        return x0

    return guided


def dynamic_thresholding(denoiser: Denoiser, percentile: float = 0.995, max_value: float = 1.0) -> Denoiser:
    """Imagen's dynamic thresholding (Saharia et al. 2022, sec. 2.3) of the x0 prediction.

    Per sample, s = the ``percentile`` of |x0| (at least ``max_value``); x0 is
    clipped to [-s, s] and divided by s / max_value.
    """
    if not 0 < percentile <= 1:
        raise ValueError(f"dynamic thresholding percentile must be in (0, 1], got {percentile}")

    def thresholded(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        x0 = denoiser(x, sigma, cond)
        s = torch.quantile(x0.flatten(1).abs().float(), percentile, dim=1).clamp(min=max_value)
        s = append_dims(s.to(x0.dtype), x0.ndim)
        return x0.clamp(-s, s) / s * max_value

    return thresholded


def classifier_guidance(denoiser: Denoiser, grad: ClassifierGrad, scale: float) -> Denoiser:
    """Classifier guidance (Dhariwal & Nichol 2021) as a shift of the x0 prediction.

    The score is (x0 - x) / sigma^2, so adding ``scale * grad log p(y | x)`` to
    the score adds ``sigma^2 * scale * grad`` to x0.
    """

    def guided(x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        x0 = denoiser(x, sigma, cond)
        if scale == 0:
            return x0
        with torch.enable_grad():
            g = grad(x.detach(), sigma, cond)
        return x0 + append_dims(sigma.to(x0.dtype), x0.ndim) ** 2 * scale * g.to(x0.dtype)

    return guided


class StepConditioning:
    """A denoiser that gives each sampler step its own conditioning (prompt editing, alternation).

    ``pairs[j]`` is a guided denoiser with its unconditional input bound, and the cond it
    goes with: one per distinct (prompt, negative prompt) of the run. ``per_step[i]`` is
    the pair of step i (0-based, counted from the start of the run's lineage). The runner
    sets ``step`` before each sampler step, so every network evaluation of that step
    (Heun's second, a RePaint pass) sees the same prompt. The sampler's own ``cond``
    argument is not used: the schedule decides.
    """

    def __init__(self, pairs: list[tuple[Denoiser, Cond]], per_step: list[int]):
        if not pairs or not per_step or max(per_step) >= len(pairs) or min(per_step) < 0:
            raise ValueError("every step needs one of the conditioning pairs")
        self.pairs = pairs
        self.per_step = per_step
        self.step = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        denoise, step_cond = self.pairs[self.per_step[min(self.step, len(self.per_step) - 1)]]
        return denoise(x, sigma, step_cond)
