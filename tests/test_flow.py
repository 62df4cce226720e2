"""Rectified-flow maths behind the denoiser contract (studio/engine/flow.py)."""

from __future__ import annotations

import math

import pytest
import torch

from studio.engine.flow import (
    FLOW_SIGMA_MAX,
    DynamicShift,
    FlowDenoiser,
    FlowSchedule,
    flow_sigmas,
    flow_t_to_sigma,
    shift_flow_t,
    sigma_to_flow_t,
)
from studio.engine.samplers import SAMPLERS, get_sampler
from studio.engine.schedules import sampling_sigmas, schedule_at_size

TARGET = torch.tensor([0.5, -1.0, 2.0, 0.25]).reshape(1, 4, 1, 1)


def point_velocity(x: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
    """The exact velocity when all data sits at TARGET: v = noise - x0 = (x_t - x0) / t."""
    return (x - TARGET) / t.reshape(-1, 1, 1, 1).clamp(min=1e-12)


def test_sigma_and_t_round_trip_and_t_one_is_exact_in_float32():
    ts = torch.tensor([0.0, 0.001, 0.25, 0.5, 0.9, 0.999, 1.0], dtype=torch.float64)
    sigmas = flow_t_to_sigma(ts)
    assert float(sigmas[-1]) == FLOW_SIGMA_MAX
    assert torch.allclose(sigma_to_flow_t(sigmas[:-1]), ts[:-1], atol=1e-12)
    assert float(sigma_to_flow_t(torch.tensor([FLOW_SIGMA_MAX], dtype=torch.float32))) == 1.0
    assert torch.isfinite(torch.tensor(FLOW_SIGMA_MAX, dtype=torch.float32) ** 2)


@pytest.mark.parametrize("sigma", [FLOW_SIGMA_MAX, 30.0, 1.0, 0.01])
def test_flow_denoiser_recovers_the_data_point(sigma):
    noise = torch.randn(1, 4, 1, 1, generator=torch.Generator().manual_seed(0))
    x = TARGET + sigma * noise  # the VE sample
    x0 = FlowDenoiser(point_velocity)(x, torch.tensor([sigma]), None)
    assert torch.allclose(x0, TARGET, atol=1e-5)


def test_network_sees_the_flow_form_sample_and_time():
    seen = {}

    def network(x, t, cond):
        seen["x"], seen["t"] = x, t
        return torch.zeros_like(x)

    noise = torch.ones(1, 4, 1, 1)
    FlowDenoiser(network)(noise * FLOW_SIGMA_MAX, torch.tensor([FLOW_SIGMA_MAX]), None)
    assert float(seen["t"]) == 1.0 and torch.allclose(seen["x"], noise)
    t = 0.75
    FlowDenoiser(network)(TARGET + 3.0 * noise, torch.tensor([t / (1 - t)]), None)
    assert float(seen["t"]) == pytest.approx(t) and torch.allclose(seen["x"], (1 - t) * TARGET + t * noise)


def test_fixed_shift_is_sd3s_and_dynamic_shift_is_fluxs():
    t = torch.tensor([0.5], dtype=torch.float64)
    assert float(shift_flow_t(t, 3.0)) == pytest.approx(0.75)
    table = FlowSchedule(shift=3.0).at_size(1024, 1024)
    assert float(table.flow_ts[-1]) == 1.0 and float(table.flow_ts[499]) == pytest.approx(0.75)
    # Flux: mu = 0.5 at 256 tokens (256 px), 1.15 at 4096 tokens (1024 px).
    dyn = DynamicShift()
    assert dyn.shift(256, 256) == pytest.approx(math.exp(0.5))
    assert dyn.shift(1024, 1024) == pytest.approx(math.exp(1.15))
    small = schedule_at_size(FlowSchedule(dynamic=dyn), 256, 256)
    large = schedule_at_size(FlowSchedule(dynamic=dyn), 1024, 1024)
    assert float(large.flow_ts[499]) > float(small.flow_ts[499])


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace", "karras"])
def test_every_spacing_gives_decreasing_sigmas_ending_in_zero(spacing):
    table = FlowSchedule(shift=3.0).at_size(512, 512)
    sigmas = sampling_sigmas(table, 10, spacing)
    assert sigmas.shape == (11,) and float(sigmas[-1]) == 0
    assert bool((sigmas[:-1] > sigmas[1:]).all())
    if spacing in ("trailing", "linspace", "karras"):
        assert float(sigmas[0]) == pytest.approx(FLOW_SIGMA_MAX)  # these start from pure noise


@pytest.mark.parametrize("steps", [3, 4, 7, 28])
def test_trailing_spacing_is_the_flux_pipelines_linspace_then_shift(steps):
    shift = math.exp(0.8)
    table = FlowSchedule(shift=shift).at_size(512, 512)
    expected = shift_flow_t(torch.linspace(1, 1 / steps, steps, dtype=torch.float64), shift)
    assert torch.allclose(sampling_sigmas(table, steps, "trailing"), flow_sigmas(expected), rtol=1e-6)


def euler_in_t(velocity, noise: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """The flow-matching Euler scheduler's update, x += v (t_next - t), as diffusers runs it."""
    x = noise.clone()
    ts = torch.cat([ts, ts.new_zeros(1)])
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        x = x + velocity(x, t.float().reshape(1), None) * float(t_next - t)
    return x


def swirl_velocity(x: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
    """A smooth, nonlinear velocity field (no real data behind it): tests the integrator, not the model."""
    tt = t.reshape(-1, 1, 1, 1)
    return torch.tanh(x) * (0.5 + tt) + torch.roll(x, 1, dims=1) * 0.3 - TARGET * (1 - tt)


def test_studio_euler_on_sigmas_is_flow_euler_in_t():
    steps = 8
    ts = shift_flow_t(torch.linspace(1, 1 / steps, steps, dtype=torch.float64), 3.0)
    noise = torch.randn(1, 4, 3, 3, generator=torch.Generator().manual_seed(1))
    sigmas = flow_sigmas(ts)
    ours = get_sampler("euler").fn(FlowDenoiser(swirl_velocity), noise * sigmas[0], sigmas, cond=None,
                                   generator=torch.Generator().manual_seed(2))
    assert torch.allclose(ours, euler_in_t(swirl_velocity, noise, ts), atol=1e-5)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_lands_on_the_data_point(name):
    table = FlowSchedule(shift=3.0).at_size(512, 512)
    sigmas = sampling_sigmas(table, 12, "linspace" if name not in ("ddim", "ddpm") else "trailing")
    noise = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(3))
    out = SAMPLERS[name].fn(FlowDenoiser(point_velocity), noise * sigmas[0], sigmas, cond=None,
                            generator=torch.Generator().manual_seed(4))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, TARGET.expand_as(out), atol=1e-3)
