"""The one denoiser contract, and wrappers that put discrete-time networks behind it.

A denoiser is any callable ``denoise(x, sigma, cond) -> x0`` where ``x`` is a
batch of noisy samples ``x0 + sigma * eps`` (variance-exploding form), ``sigma``
is a tensor of shape ``[batch]`` and ``cond`` is a mapping of batch-first
tensors (or None). Samplers, guidance and inpainting see nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import torch

from .schedules import DiscreteSchedule

Cond = Mapping[str, torch.Tensor] | None

# A network in discrete time: (scaled input x_t, continuous timestep t [B], cond) -> output.
Network = Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor]

PREDICTIONS = ("epsilon", "v_prediction", "sample")


class Denoiser(Protocol):
    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor: ...


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Give a [B] tensor trailing singleton dims so it broadcasts against an ndim tensor."""
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


class DiscreteTimeDenoiser:
    """Wrap a network trained in discrete time (predicting eps, v or x0) into the contract.

    Karras et al. (2022) table 1: c_in = 1 / sqrt(sigma^2 + 1) turns the VE sample
    into the network's VP input; the timestep is found by interpolating the
    schedule in log sigma, so respaced and Karras sigmas both work.
    """

    def __init__(self, network: Network, schedule: DiscreteSchedule, prediction: str = "epsilon"):
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction type {prediction!r}; choose one of {', '.join(PREDICTIONS)}")
        self.network = network
        self.schedule = schedule
        self.prediction = prediction

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        s = append_dims(sigma.to(x.dtype), x.ndim)
        c_in = 1 / (s**2 + 1).sqrt()
        t = self.schedule.sigma_to_t(sigma)
        out = self.network(x * c_in, t.to(x.device), cond).to(x.dtype)
        if self.prediction == "epsilon":
            return x - s * out
        if self.prediction == "v_prediction":
            return x / (s**2 + 1) - s * c_in * out
        return out
