import math

import pytest
import torch

from studio.engine.schedules import (
    karras_sigmas,
    make_schedule,
    sampling_sigmas,
    spaced_timesteps,
)


@pytest.mark.parametrize("kind", ["linear", "cosine", "scaled_linear"])
def test_schedules_decrease_and_sigmas_increase(kind):
    s = make_schedule(kind)
    ac = s.alphas_cumprod
    assert ac.shape == (1000,)
    assert (ac[1:] < ac[:-1]).all() and 0 < ac[-1] < ac[0] < 1
    assert (s.sigmas[1:] > s.sigmas[:-1]).all()


def test_known_values():
    # Stable Diffusion's scaled-linear schedule: sigma_max ~ 14.6, sigma_min ~ 0.0292.
    sd = make_schedule("scaled_linear")
    assert sd.sigma_max == pytest.approx(14.6146, rel=1e-3)
    assert sd.sigma_min == pytest.approx(0.02916, rel=1e-3)
    # Cosine: abar(t) = f(t)/f(0) with f = cos^2((t/T + s)/(1 + s) pi/2).
    cos = make_schedule("cosine")
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert float(cos.alphas_cumprod[499]) == pytest.approx(f(500) / f(0), rel=1e-9)


def test_sigma_t_round_trip():
    s = make_schedule("scaled_linear")
    t = torch.tensor([0.0, 1.5, 250.25, 999.0])
    assert torch.allclose(s.sigma_to_t(s.t_to_sigma(t).float()), t, atol=1e-3)
    assert torch.allclose(s.t_to_sigma(torch.arange(1000.0)), s.sigmas, rtol=1e-6)


def test_spacings_match_published_tables():
    # Lin et al. 2023, table 2 (T=1000, 10 steps).
    assert spaced_timesteps(1000, 10, "leading").tolist() == [900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    assert spaced_timesteps(1000, 10, "trailing").tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    lin = spaced_timesteps(1000, 10, "linspace")
    assert lin[0] == 999 and lin[-1] == 0


def test_karras_endpoints_and_zero():
    k = karras_sigmas(10, 0.03, 14.6)
    assert k.shape == (11,) and k[-1] == 0
    assert k[0].item() == pytest.approx(14.6, rel=1e-5) and k[-2].item() == pytest.approx(0.03, rel=1e-4)
    assert (k[1:] < k[:-1]).all()


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace", "karras"])
def test_sampling_sigmas_shape(spacing):
    sig = sampling_sigmas(make_schedule("cosine"), 7, spacing)
    assert sig.shape == (8,) and sig[-1] == 0 and (sig[1:] < sig[:-1]).all()


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="steps"):
        sampling_sigmas(make_schedule("cosine"), 0)
    with pytest.raises(ValueError, match="spacing"):
        sampling_sigmas(make_schedule("cosine"), 5, "sideways")
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("quadratic")


def test_leading_offset_matches_stable_diffusion():
    # diffusers' DDIM/Euler with steps_offset=1, 10 steps: 901, 801, ..., 1.
    assert spaced_timesteps(1000, 10, "leading", offset=1).tolist() == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
    assert spaced_timesteps(1000, 10, "trailing", offset=1).tolist() == spaced_timesteps(1000, 10, "trailing").tolist()
