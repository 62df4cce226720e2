"""Samplers: plain functions over the denoiser contract.

Every sampler has the signature

    sample(denoise, x, sigmas, *, cond, generator, callback=None, start=0, carry=None, **options)

and integrates from ``sigmas[start]`` down to ``sigmas[-1]`` (normally 0).
``x`` must already carry noise of level ``sigmas[start]``. Every random draw
uses ``generator`` (a CPU generator, so a seed gives the same noise on every
device). After each step the callback receives a :class:`SamplerStep`, whose
``carry`` is the sampler's multistep memory: passing it back with
``start=i + 1`` and the generator's state at that point resumes the run
exactly, which is how the runner branches from step k.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .denoisers import Cond, Denoiser
from .sampler_names import SAMPLER_NAMES, find_sampler, sampler_list
from .schedules import SIGMA_INFINITE


@dataclass(frozen=True, eq=False)
class SamplerStep:
    index: int  # step i takes sigmas[i] to sigmas[i + 1]
    sigma: float
    sigma_next: float
    x: torch.Tensor  # the state after the step (noise level sigma_next)
    denoised: torch.Tensor  # the x0 prediction made during the step
    carry: Any  # what the sampler needs to resume at index + 1


StepCallback = Callable[[SamplerStep], None]


def randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the generator's device, then moved."""
    noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
    return noise.to(device=x.device, dtype=x.dtype)


def _sigma_batch(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return sigma.to(x.device, torch.float32).expand(x.shape[0])


def ancestral_step(
    sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a step into a deterministic part to sigma_down and fresh noise sigma_up (Song et al. 2021)."""
    if float(sigma_next) == 0 or eta == 0:
        return sigma_next, torch.zeros_like(sigma_next)
    up = eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2).sqrt()
    up = torch.minimum(up, sigma_next)
    down = (sigma_next**2 - up**2).sqrt()
    return down, up


def _report(callback: StepCallback | None, i, sigmas, x, denoised, carry=None) -> None:
    if callback is not None:
        callback(SamplerStep(i, float(sigmas[i]), float(sigmas[i + 1]), x, denoised, carry))


@torch.no_grad()
def sample_euler(
    denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, cond: Cond, generator: torch.Generator,
    callback: StepCallback | None = None, start: int = 0, carry: Any = None,
) -> torch.Tensor:
    """Euler's method on the probability-flow ODE (Karras et al. 2022, alg. 1 with no churn)."""
    for i in range(start, len(sigmas) - 1):
        denoised = denoise(x, _sigma_batch(x, sigmas[i]), cond)
        x = _euler_step(x, denoised, sigmas[i], sigmas[i + 1])
        _report(callback, i, sigmas, x, denoised)
    return x


def _euler_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
    """x + (x - denoised) / sigma * (sigma_next - sigma), written as the DDIM update it equals.

    The usual form cancels two numbers of size sigma; from a flow model's stand-in for infinite
    noise (SIGMA_INFINITE) that loses the whole picture in float32, this form loses nothing."""
    return denoised + (x - denoised) * (sigma_next / sigma)


@torch.no_grad()
def sample_euler_ancestral(
    denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, cond: Cond, generator: torch.Generator,
    callback: StepCallback | None = None, start: int = 0, carry: Any = None, eta: float = 1.0,
) -> torch.Tensor:
    """Euler steps to sigma_down, then fresh noise up to sigma_next."""
    for i in range(start, len(sigmas) - 1):
        denoised = denoise(x, _sigma_batch(x, sigmas[i]), cond)
        down, up = ancestral_step(sigmas[i], sigmas[i + 1], eta)
        x = _euler_step(x, denoised, sigmas[i], down)
        if float(sigmas[i + 1]) > 0:
            x = x + randn_like(x, generator) * up
        _report(callback, i, sigmas, x, denoised)
    return x


@torch.no_grad()
def sample_heun(
    denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, cond: Cond, generator: torch.Generator,
    callback: StepCallback | None = None, start: int = 0, carry: Any = None,
) -> torch.Tensor:
    """Heun's second-order method (Karras et al. 2022, alg. 1); the last step to 0 is Euler.

    So is a step from SIGMA_INFINITE (a flow model's pure noise): the trapezoid over an unbounded
    interval means nothing, and the Euler step from pure noise is already exact to first order.
    """
    for i in range(start, len(sigmas) - 1):
        denoised = denoise(x, _sigma_batch(x, sigmas[i]), cond)
        d = (x - denoised) / sigmas[i]
        dt = sigmas[i + 1] - sigmas[i]
        if float(sigmas[i + 1]) == 0 or float(sigmas[i]) >= SIGMA_INFINITE:
            x = _euler_step(x, denoised, sigmas[i], sigmas[i + 1])
        else:
            x_2 = _euler_step(x, denoised, sigmas[i], sigmas[i + 1])
            denoised_2 = denoise(x_2, _sigma_batch(x, sigmas[i + 1]), cond)
            d_2 = (x_2 - denoised_2) / sigmas[i + 1]
            x = x + (d + d_2) / 2 * dt
        _report(callback, i, sigmas, x, denoised)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, cond: Cond, generator: torch.Generator,
    callback: StepCallback | None = None, start: int = 0, carry: Any = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-sigma time.

    carry is (previous x0 prediction, previous sigma) or None for a first-order step.
    """
    old = carry
    for i in range(start, len(sigmas) - 1):
        denoised = denoise(x, _sigma_batch(x, sigmas[i]), cond)
        s, s_next = sigmas[i], sigmas[i + 1]
        if float(s_next) == 0:
            x = denoised
        else:
            t, t_next = -s.log(), -s_next.log()
            h = t_next - t
            if old is None:
                d = denoised
            else:
                old_denoised, old_sigma = old
                h_last = t - (-old_sigma.log())
                r = h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (s_next / s) * x - torch.expm1(-h) * d
        old = (denoised, s)
        _report(callback, i, sigmas, x, denoised, old)
    return x


def _ddim_update(x, denoised, s, s_next, eta, generator):
    """One DDIM step in VE form (Song et al. 2021, eq. 12): eta=0 deterministic, eta=1 is DDPM."""
    if float(s_next) == 0:
        return denoised
    eps = (x - denoised) / s
    abar, abar_next = 1 / (1 + s**2), 1 / (1 + s_next**2)
    # DDIM's sigma_t(eta) in VP units, converted to VE units by 1/sqrt(abar_next).
    var_vp = eta**2 * (1 - abar_next) / (1 - abar) * (1 - abar / abar_next)
    up = (var_vp / abar_next).clamp(min=0).sqrt()
    x = denoised + (s_next**2 - up**2).clamp(min=0).sqrt() * eps
    if eta > 0:
        x = x + up * randn_like(x, generator)
    return x


@torch.no_grad()
def sample_ddim(
    denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, cond: Cond, generator: torch.Generator,
    callback: StepCallback | None = None, start: int = 0, carry: Any = None, eta: float = 0.0,
) -> torch.Tensor:
    """DDIM (Song et al. 2021) with stochasticity eta."""
    for i in range(start, len(sigmas) - 1):
        denoised = denoise(x, _sigma_batch(x, sigmas[i]), cond)
        x = _ddim_update(x, denoised, sigmas[i], sigmas[i + 1], eta, generator)
        _report(callback, i, sigmas, x, denoised)
    return x


@torch.no_grad()
def sample_ddpm(
    denoise: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, *, cond: Cond, generator: torch.Generator,
    callback: StepCallback | None = None, start: int = 0, carry: Any = None,
) -> torch.Tensor:
    """DDPM ancestral sampling (Ho et al. 2020) from the posterior q(x_prev | x_t, x0).

    In VP form the posterior mean is c0 * x0 + ct * x_t with variance beta_tilde;
    written here in VE units, with the respaced beta = 1 - abar_t / abar_prev.
    """
    for i in range(start, len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, _sigma_batch(x, s), cond)
        if float(s_next) == 0:
            x = denoised
        else:
            abar, abar_prev = 1 / (1 + s**2), 1 / (1 + s_next**2)
            beta = 1 - abar / abar_prev
            c0 = abar_prev.sqrt() * beta / (1 - abar)
            ct = (1 - beta).sqrt() * (1 - abar_prev) / (1 - abar)
            var = beta * (1 - abar_prev) / (1 - abar)
            x_t = x * abar.sqrt()
            x_prev = c0 * denoised + ct * x_t + var.sqrt() * randn_like(x, generator)
            x = x_prev / abar_prev.sqrt()
        _report(callback, i, sigmas, x, denoised)
    return x


@dataclass(frozen=True)
class SamplerSpec:
    name: str  # the key used in requests and on the command line
    label: str  # the AUTOMATIC1111 name, written into PNG parameters
    fn: Callable[..., torch.Tensor]
    evals_per_step: int
    stochastic: bool


# (function, network evaluations per step, stochastic) for each name in sampler_names.SAMPLER_NAMES
_FUNCTIONS = {
    "euler": (sample_euler, 1, False),
    "euler_a": (sample_euler_ancestral, 1, True),
    "heun": (sample_heun, 2, False),
    "dpmpp_2m": (sample_dpmpp_2m, 1, False),
    "ddim": (sample_ddim, 1, False),
    "ddpm": (sample_ddpm, 1, True),
}
SAMPLERS: dict[str, SamplerSpec] = {s.name: SamplerSpec(s.name, s.label, *_FUNCTIONS[s.name]) for s in SAMPLER_NAMES}


def get_sampler(name: str) -> SamplerSpec:
    """Find a sampler by key, AUTOMATIC1111 label or ComfyUI key, case-insensitively."""
    found = find_sampler(name)
    if found is None:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sampler_list()}")
    return SAMPLERS[found.name]
