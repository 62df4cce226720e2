"""Rectified-flow models (SD 3.5, Flux, Z-Image) behind the engine's one denoiser contract.

A flow model is trained on ``x_t = (1 - t) x0 + t noise`` with t in [0, 1] and predicts the velocity
``v = noise - x0``. Dividing by ``1 - t`` gives the variance-exploding sample ``x0 + sigma noise`` with
``sigma = t / (1 - t)``, which is what every sampler of the studio steps (k-diffusion and ComfyUI treat
flow models the same way). Euler in sigma is then exactly Euler in t: both move along the predicted
straight line, so the studio's Euler reproduces diffusers' FlowMatchEulerDiscreteScheduler.

t = 1 (pure noise) is sigma = infinity. The schedule stands in FLOW_SIGMA_MAX for it: large enough
that float32 rounds ``sigma / (1 + sigma)`` to exactly 1 and ``x / (1 + sigma)`` to the noise itself,
small enough that sigma^2 stays finite in float32. The samplers write their updates so that nothing
of size sigma cancels (samplers._euler_step), and Heun takes an Euler step from it.

Shift: models see more high-noise steps at higher resolution. SD 3.5 uses a fixed shift
``t' = s t / (1 + (s - 1) t)``; Flux shifts by mu, linear in the image's token count
(``t' = e^mu / (e^mu + 1/t - 1)``). Both are the same map with ``s = e^mu``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .denoisers import Cond, append_dims
from .schedules import SIGMA_INFINITE, DiscreteSchedule

FLOW_SIGMA_MAX = SIGMA_INFINITE  # stands for t = 1; see the module docstring

# (x_t in flow form [B, C, h, w], t in [0, 1] [B], cond) -> velocity (noise - x0)
VelocityNetwork = Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor]


def flow_t_to_sigma(t: torch.Tensor) -> torch.Tensor:
    """Flow time t in [0, 1] -> the VE sigma t / (1 - t), with t = 1 mapped to FLOW_SIGMA_MAX."""
    t = t.double()
    return torch.where(t >= 1, torch.full_like(t, FLOW_SIGMA_MAX), t / (1 - t).clamp(min=1 / FLOW_SIGMA_MAX))


def sigma_to_flow_t(sigma: torch.Tensor) -> torch.Tensor:
    """The VE sigma -> flow time sigma / (1 + sigma)."""
    return sigma / (1 + sigma)


def shift_flow_t(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's timestep shift (Esser et al. 2024, eq. 23): more steps at high noise for shift > 1."""
    return shift * t / (1 + (shift - 1) * t)


@dataclass(frozen=True)
class DynamicShift:
    """Flux's resolution-dependent shift: mu linear in the number of image tokens between two anchors."""

    base_shift: float = 0.5
    max_shift: float = 1.15
    base_tokens: int = 256
    max_tokens: int = 4096
    pixels_per_token: int = 16  # the VAE's 8x times the transformer's 2x2 patches

    def shift(self, width: int, height: int) -> float:
        tokens = (width // self.pixels_per_token) * (height // self.pixels_per_token)
        slope = (self.max_shift - self.base_shift) / (self.max_tokens - self.base_tokens)
        mu = self.base_shift + slope * (tokens - self.base_tokens)
        return math.exp(mu)


@dataclass(frozen=True)
class FlowSchedule:
    """A flow model's noise schedule: 1000 training times t = i / 1000, shifted.

    ``schedule.at_size(width, height)`` gives the DiscreteSchedule the runner samples from (the shift may
    depend on the size); ``FlowDenoiser`` needs no table, it reads t straight from sigma.
    """

    shift: float = 1.0
    dynamic: DynamicShift | None = None
    num_timesteps: int = 1000

    def shift_at(self, width: int, height: int) -> float:
        return self.dynamic.shift(width, height) if self.dynamic is not None else self.shift

    def at_size(self, width: int, height: int) -> FlowTable:
        ts = torch.arange(1, self.num_timesteps + 1, dtype=torch.float64) / self.num_timesteps
        shifted = shift_flow_t(ts, self.shift_at(width, height))
        return FlowTable(1 / (1 + flow_t_to_sigma(shifted) ** 2), shifted, self.shift_at(width, height))


@dataclass(frozen=True, eq=False)
class FlowTable(DiscreteSchedule):
    """A DiscreteSchedule whose timestep i is the (shifted) flow time ``flow_ts[i]``.

    Leading and linspace spacings pick timesteps from it as for any discrete model. Trailing is
    linspace(1, 1/steps) shifted, computed exactly rather than rounded to the 1000 training times (the
    Flux, SD3 and Z-Image pipelines' spacing; ComfyUI's "simple" rounds), and Karras runs in t, not in
    sigma, since sigma's top end stands for infinity.
    """

    flow_ts: torch.Tensor | None = None  # float64 [n], increasing, the last is 1
    shift: float = 1.0

    def spaced(self, steps: int, spacing: str) -> torch.Tensor | None:
        """The sampler's sigmas for the spacings a flow table computes itself; None for the others."""
        if spacing == "trailing":
            n = self.num_timesteps
            ts = torch.linspace(n, n / steps, steps, dtype=torch.float64) / n
            return flow_sigmas(shift_flow_t(ts, self.shift))
        if spacing == "karras":
            return self.karras(steps)
        return None

    def karras(self, steps: int, rho: float = 7.0) -> torch.Tensor:
        t_min, t_max = float(self.flow_ts[0]), float(self.flow_ts[-1])
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        ts = (t_max ** (1 / rho) + ramp * (t_min ** (1 / rho) - t_max ** (1 / rho))) ** rho
        return torch.cat([flow_t_to_sigma(ts), torch.zeros(1, dtype=torch.float64)]).float()


def flow_sigmas(ts: torch.Tensor) -> torch.Tensor:
    """Decreasing flow times (without the final 0) -> the sampler's VE sigmas ending in 0, float32.

    For parity tests and for handing a diffusers pipeline the same schedule."""
    return torch.cat([flow_t_to_sigma(ts), torch.zeros(1, dtype=torch.float64)]).float()


class FlowDenoiser:
    """Wrap a velocity network into ``denoise(x, sigma, cond) -> x0``.

    x_flow = x / (1 + sigma) = (1 - t) x0 + t noise, and x0 = x_flow - t v.
    """

    def __init__(self, network: VelocityNetwork):
        self.network = network

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        t = sigma_to_flow_t(sigma.double())
        x_flow = x / append_dims((1 + sigma.double()).to(x.dtype), x.ndim)
        v = self.network(x_flow, t.to(torch.float32).to(x.device), cond).to(x.dtype)
        return x_flow - append_dims(t.to(x.dtype), x.ndim) * v
