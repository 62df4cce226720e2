"""Samplers against a Gaussian mixture, whose exact denoiser is known in closed form."""

import pytest
import torch

from studio.engine.gaussian_mixture import reference_mixture, sampler_error
from studio.engine.samplers import SAMPLERS, get_sampler
from studio.engine.schedules import karras_sigmas

# Steps at which each sampler must reproduce the data distribution, and the tolerances
# (20,000 samples: the mean's own sampling error is about 0.012, the covariance's about 0.03).
ACCURATE_STEPS = {"euler": 100, "euler_a": 100, "heun": 50, "dpmpp_2m": 50, "ddim": 100, "ddpm": 100}


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_reproduces_mixture(name):
    e = sampler_error(name, ACCURATE_STEPS[name], n=20000, seed=1)
    assert e.mean_error < 0.06, e
    assert e.cov_error < 0.15, e
    assert e.weight_error < 0.02, e


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_error_falls_as_steps_grow(name):
    coarse = sampler_error(name, 5, n=20000, seed=2)
    fine = sampler_error(name, ACCURATE_STEPS[name], n=20000, seed=2)
    assert fine.cov_error < coarse.cov_error / 4
    assert fine.weight_error < coarse.weight_error


def test_ddim_eta0_is_euler_and_ddpm_is_ancestral_euler():
    gm = reference_mixture()
    sigmas = karras_sigmas(12, 0.002, 80.0).double()
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 80

    def run(name, seed=3):
        return get_sampler(name).fn(gm.denoise, x, sigmas, cond=None, generator=torch.Generator().manual_seed(seed))

    assert torch.allclose(run("ddim"), run("euler"), atol=1e-9)
    assert torch.allclose(run("ddpm"), run("euler_a"), atol=1e-9)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_same_generator_same_samples_and_resume(name):
    gm = reference_mixture()
    sigmas = karras_sigmas(8, 0.002, 80.0).double()
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 80
    fn = get_sampler(name).fn
    states = []
    g = torch.Generator().manual_seed(7)
    full = fn(gm.denoise, x, sigmas, cond=None, generator=g,
              callback=lambda s: states.append((s.x.clone(), s.carry, g.get_state())))
    again = fn(gm.denoise, x, sigmas, cond=None, generator=torch.Generator().manual_seed(7))
    assert torch.equal(full, again)
    # Resuming after step 3 from the recorded state, carry and generator state is bit-exact.
    x3, carry3, rng3 = states[3]
    g2 = torch.Generator()
    g2.set_state(rng3)
    resumed = fn(gm.denoise, x3, sigmas, cond=None, generator=g2, start=4, carry=carry3)
    assert torch.equal(resumed, full)


def test_every_step_reports_state_and_prediction():
    gm = reference_mixture()
    sigmas = karras_sigmas(6, 0.002, 80.0).double()
    x = torch.zeros(4, 2, dtype=torch.float64) + 80
    seen = []
    get_sampler("heun").fn(gm.denoise, x, sigmas, cond=None, generator=torch.Generator(), callback=seen.append)
    assert [s.index for s in seen] == list(range(6))
    assert seen[-1].sigma_next == 0 and all(s.denoised.shape == x.shape for s in seen)


def test_sampler_lookup_by_a1111_label():
    assert get_sampler("DPM++ 2M").name == "dpmpp_2m"
    assert get_sampler("Euler a").name == "euler_a"
    with pytest.raises(ValueError, match="unknown sampler 'lms'"):
        get_sampler("lms")
