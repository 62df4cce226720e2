"""Tiled diffusion (MultiDiffusion, tiled_diffusion.py): the wrapper, the request field, and runs of the toy
model and tiny random SD models through the runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import ControlUnit, GenerationRequest, RequestError, validate_request
from studio.engine.runner import Runner
from studio.engine.tiled_diffusion import tiled_denoiser

TOY = GenerationRequest(prompt="red circle", model="toy", steps=6, cfg_scale=3.0, seed=5, width=64, height=64)


def gradient_latent(h: int = 48, w: int = 64) -> torch.Tensor:
    ramp = torch.linspace(-1, 1, w)[None, None, None, :].expand(1, 3, h, w)
    return ramp + 0.3 * torch.linspace(-1, 1, h)[None, None, :, None]


def blur_denoiser(x: torch.Tensor, sigma: torch.Tensor, cond) -> torch.Tensor:
    """A denoiser whose output depends on the neighbourhood: a 5x5 box blur with zero padding, so a tile
    alone darkens its own borders as a network's padding does."""
    kernel = torch.full((x.shape[1], 1, 5, 5), 1 / 25, dtype=x.dtype)
    return F.conv2d(x, kernel, padding=2, groups=x.shape[1])


def column_steps(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:] - x[..., :-1]).abs().mean(dim=(0, 1, 2))


def test_pointwise_denoiser_is_unchanged_by_tiles():
    def pointwise(x, sigma, cond):
        return torch.tanh(x) * 0.7 + cond["shift"] / (1 + sigma[:, None, None, None])

    x = torch.randn(2, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    sigma, cond = torch.tensor([2.0, 3.0]), {"shift": torch.full((2, 1, 1, 1), 0.25)}
    tiled = tiled_denoiser(pointwise, 16)(x, sigma, cond)
    torch.testing.assert_close(tiled, pointwise(x, sigma, cond), rtol=0, atol=1e-6)


def test_latent_sized_cond_is_cut_to_each_tile():
    seen = []

    def records(x, sigma, cond):
        seen.append((tuple(x.shape[-2:]), tuple(cond["concat"].shape[-2:]), tuple(cond["context"].shape)))
        return x + cond["concat"]

    x, concat = torch.zeros(1, 4, 24, 40), torch.randn(1, 4, 24, 40)
    out = tiled_denoiser(records, 16, 4)(x, torch.ones(1), {"concat": concat, "context": torch.zeros(1, 77, 8)})
    assert all(xs == cs and ctx == (1, 77, 8) for xs, cs, ctx in seen) and len(seen) == 2 * 3
    torch.testing.assert_close(out, concat)  # each tile added its own part of the map


def test_feathered_tiles_leave_no_seam_step_larger_than_the_neighbours():
    x = gradient_latent()
    whole = blur_denoiser(x, torch.ones(1), None)
    feathered = tiled_denoiser(blur_denoiser, 16, 6)(x, torch.ones(1), None)
    hard = tiled_denoiser(blur_denoiser, 16, 0)(x, torch.ones(1), None)  # tiles that only touch: a seam
    inner = slice(4, -4)  # the image's own border darkens in every version
    reference = column_steps(whole)[inner].max()
    assert column_steps(hard)[inner].max() > 3 * reference
    steps = column_steps(feathered)[inner]
    assert steps.max() < 1.25 * reference, steps


def test_one_tile_covering_the_toy_image_equals_the_untiled_run():
    plain = Runner(ToyShapesModel()).run(TOY)
    tiled = Runner(ToyShapesModel()).run(TOY.with_changes(tile_size=64))
    assert np.array_equal(plain.image, tiled.image) and np.array_equal(plain.latent, tiled.latent)


def test_tiled_toy_runs_reproduce_with_the_same_seed_and_differ_from_untiled():
    request = TOY.with_changes(width=96, height=64, tile_size=32, sampler="euler_a")
    a, b = Runner(ToyShapesModel()).run(request), Runner(ToyShapesModel()).run(request)
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, Runner(ToyShapesModel()).run(request.with_changes(tile_size=0)).image)


@pytest.mark.parametrize(("changes", "message"), [
    ({"tile_size": 12}, "multiple of 8 pixels from 32"),
    ({"tile_size": -8}, r"0 \(off\)"),
    ({"tile_size": 16}, "from 32"),
    ({"tile_size": 4096}, "to 2048"),
    ({"tile_size": 64.0}, "got 64.0"),
    ({"vae_tile_size": 100}, "vae_tile_size"),
])
def test_bad_tile_sizes_are_refused_with_what_to_choose(changes, message):
    with pytest.raises(RequestError, match=message) as info:
        validate_request(TOY.with_changes(**changes))
    assert info.value.field == next(iter(changes))


def test_tiles_with_controlnet_are_refused_by_name():
    unit = ControlUnit("canny", image=np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(RequestError, match="ControlNet") as info:
        validate_request(TOY.with_changes(tile_size=32, controlnets=(unit,)))
    assert info.value.field == "tile_size"
