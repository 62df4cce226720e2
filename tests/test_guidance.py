"""Identities that guidance wrappers must keep."""

import pytest
import torch

from studio.engine.guidance import classifier_free_guidance, classifier_guidance, dynamic_thresholding


def toy_denoiser(calls=None):
    """A denoiser whose output depends on x, sigma and cond, and which records its batch sizes."""

    def denoise(x, sigma, cond):
        if calls is not None:
            calls.append(x.shape[0])
        return torch.tanh(x * cond["w"].view(-1, 1, 1, 1)) / (1 + sigma.view(-1, 1, 1, 1))

    return denoise


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 2, 4, 4, generator=g), torch.full((3,), 2.0), {"w": torch.tensor([1.0, 2.0, 3.0])}


UNCOND = {"w": torch.tensor([0.5])}


def test_cfg_scale_one_is_the_conditional_denoiser(batch):
    x, sigma, cond = batch
    base = toy_denoiser()
    assert torch.equal(classifier_free_guidance(base, UNCOND, 1.0)(x, sigma, cond), base(x, sigma, cond))


def test_cfg_is_one_batched_call_and_extrapolates(batch):
    x, sigma, cond = batch
    calls = []
    base = toy_denoiser(calls)
    out = classifier_free_guidance(base, UNCOND, 4.0)(x, sigma, cond)
    assert calls == [6]
    c = base(x, sigma, cond)
    u = base(x, sigma, {"w": UNCOND["w"].expand(3)})
    assert torch.allclose(out, u + 4.0 * (c - u), atol=1e-6)


def test_rescale_zero_changes_nothing(batch):
    x, sigma, cond = batch
    base = toy_denoiser()
    plain = classifier_free_guidance(base, UNCOND, 6.0)(x, sigma, cond)
    assert torch.equal(classifier_free_guidance(base, UNCOND, 6.0, rescale=0.0)(x, sigma, cond), plain)


def test_rescale_one_matches_conditional_std(batch):
    x, sigma, cond = batch
    base = toy_denoiser()
    out = classifier_free_guidance(base, UNCOND, 6.0, rescale=1.0)(x, sigma, cond)
    c = base(x, sigma, cond)
    assert torch.allclose(out.flatten(1).std(1), c.flatten(1).std(1), rtol=1e-5)


def test_outside_interval_is_the_conditional_denoiser_in_one_call(batch):
    x, sigma, cond = batch
    calls = []
    base = toy_denoiser(calls)
    guided = classifier_free_guidance(base, UNCOND, 7.0, interval=(0.5, 1.5))
    out = guided(x, sigma, cond)  # sigma 2.0 is above the interval
    assert calls == [3]
    assert torch.equal(out, base(x, sigma, cond))
    inside = guided(x, torch.full((3,), 1.0), cond)
    assert not torch.allclose(inside, base(x, torch.full((3,), 1.0), cond))


def test_dynamic_thresholding_bounds_and_leaves_small_values():
    big = lambda x, s, c: x * 10  # noqa: E731
    x = torch.linspace(-1, 1, 2 * 64).view(2, 1, 8, 8)
    out = dynamic_thresholding(big, 0.9)(x, torch.ones(2), None)
    assert out.abs().max() <= 1.0 + 1e-6
    small = lambda x, s, c: x * 0.5  # noqa: E731
    assert torch.equal(dynamic_thresholding(small, 0.995)(x, torch.ones(2), None), x * 0.5)


def test_classifier_guidance_shifts_x0_by_sigma_squared_grad(batch):
    x, sigma, cond = batch
    base = toy_denoiser()
    grad = lambda x, s, c: torch.ones_like(x)  # noqa: E731
    out = classifier_guidance(base, grad, 0.5)(x, sigma, cond)
    assert torch.allclose(out, base(x, sigma, cond) + 0.5 * 4.0)
    assert torch.equal(classifier_guidance(base, grad, 0.0)(x, sigma, cond), base(x, sigma, cond))
