"""Noise schedules and sigma spacings, as pure functions.

The engine works in the variance-exploding parametrisation of Karras et al.
(2022): a noisy sample is ``x = x0 + sigma * eps``. A discrete-time network
trained on ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` sees the same
sample scaled by ``sqrt(abar_t)``, with ``sigma_t = sqrt((1 - abar_t) / abar_t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .sampler_names import SPACINGS  # the names live torch-free; the spacings themselves are here

SCHEDULE_KINDS = ("linear", "cosine", "scaled_linear")
# A sigma this large stands for pure noise: a flow model's t = 1 (flow.py). float32 rounds
# sigma / (1 + sigma) to exactly 1 and sigma**2 stays finite; samplers step from it without cancellation.
SIGMA_INFINITE = 1e8


def linear_betas(n: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's linear beta schedule (Ho et al. 2020)."""
    return torch.linspace(beta_start, beta_end, n, dtype=torch.float64)


def scaled_linear_betas(
    n: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> torch.Tensor:
    """Stable Diffusion's schedule: linear in sqrt(beta)."""
    return torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2


def cosine_alphas_cumprod(n: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Improved DDPM's cosine schedule (Nichol & Dhariwal 2021), betas clipped at max_beta."""
    steps = torch.arange(n + 1, dtype=torch.float64) / n
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


def alphas_cumprod_from_betas(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas.double(), dim=0)


@dataclass(frozen=True, eq=False)
class DiscreteSchedule:
    """A discrete-time schedule of ``n`` training timesteps, t = 0 .. n-1."""

    alphas_cumprod: torch.Tensor  # float64, shape [n], decreasing

    @property
    def num_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    @property
    def sigmas(self) -> torch.Tensor:
        """sigma_t for every training timestep, float64, increasing."""
        ac = self.alphas_cumprod
        return ((1 - ac) / ac).sqrt()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep for a sigma, interpolated linearly in log sigma."""
        log_sigmas = self.sigmas.log().to(sigma.device)
        log_sigma = sigma.double().clamp(min=1e-10).log()
        idx = torch.searchsorted(log_sigmas, log_sigma).clamp(1, self.num_timesteps - 1)
        lo, hi = log_sigmas[idx - 1], log_sigmas[idx]
        w = ((log_sigma - lo) / (hi - lo)).clamp(0, 1)
        return ((idx - 1) + w).to(torch.float32)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """sigma for a (possibly fractional) timestep, interpolated in log sigma."""
        log_sigmas = self.sigmas.log().to(t.device)
        t = t.double().clamp(0, self.num_timesteps - 1)
        lo = t.floor().long()
        hi = t.ceil().long()
        w = t - lo
        return ((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp()


def make_schedule(kind: str, num_timesteps: int = 1000) -> DiscreteSchedule:
    """Build a named schedule: 'linear', 'cosine' or 'scaled_linear'."""
    if kind == "linear":
        ac = alphas_cumprod_from_betas(linear_betas(num_timesteps))
    elif kind == "cosine":
        ac = cosine_alphas_cumprod(num_timesteps)
    elif kind == "scaled_linear":
        ac = alphas_cumprod_from_betas(scaled_linear_betas(num_timesteps))
    else:
        raise ValueError(f"unknown noise schedule {kind!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    return DiscreteSchedule(ac)


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022) spacing, ``steps`` sigmas from sigma_max down to sigma_min, then 0."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def spaced_timesteps(num_timesteps: int, steps: int, spacing: str, offset: int = 0) -> torch.Tensor:
    """Training timesteps visited by a ``steps``-step sampler, in decreasing order.

    'leading' and 'trailing' follow Lin et al. (2023, table 2); 'linspace' is the
    evenly spaced (possibly fractional) variant of improved DDPM's respacing.
    ``offset`` shifts 'leading' timesteps, as Stable Diffusion's scheduler config
    does with steps_offset=1.
    """
    if spacing == "leading":
        ratio = num_timesteps // steps
        ts = (torch.arange(steps, dtype=torch.float64) * ratio + offset).clamp(max=num_timesteps - 1)
    elif spacing == "trailing":
        ratio = num_timesteps / steps
        ts = (torch.arange(num_timesteps, 0, -ratio, dtype=torch.float64).round() - 1).flip(0)
    elif spacing == "linspace":
        ts = torch.linspace(0, num_timesteps - 1, steps, dtype=torch.float64)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    return ts.flip(0)


def sampling_sigmas(
    schedule: DiscreteSchedule, steps: int, spacing: str = "leading", offset: int = 0
) -> torch.Tensor:
    """``steps + 1`` decreasing sigmas ending in 0, for a sampler over ``schedule``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    spaced = schedule.spaced(steps, spacing) if hasattr(schedule, "spaced") else None
    if spaced is not None:  # a flow model's table: exact trailing, Karras in t (see flow.py)
        return spaced
    if spacing == "karras":
        return karras_sigmas(steps, schedule.sigma_min, schedule.sigma_max)
    ts = spaced_timesteps(schedule.num_timesteps, steps, spacing, offset)
    sigmas = schedule.t_to_sigma(ts)
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def schedule_at_size(schedule, width: int, height: int) -> DiscreteSchedule:
    """The schedule a ``width`` x ``height`` run samples from: flow models shift it by resolution."""
    return schedule.at_size(width, height) if hasattr(schedule, "at_size") else schedule


def alpha_bar_from_sigma(sigma: torch.Tensor) -> torch.Tensor:
    """abar = 1 / (1 + sigma^2): the discrete-time view of a VE sigma."""
    return 1 / (1 + sigma**2)
