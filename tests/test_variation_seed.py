"""Variation seeds (AUTOMATIC1111's "Variation seed" / "Variation seed strength")."""

import math

import numpy as np
import pytest
import torch

from studio.engine.models.toy import ToyShapesModel
from studio.engine.noise import initial_noise, slerp
from studio.engine.request import GenerationRequest, RequestError
from studio.engine.runner import Runner

# "circle" without a colour: eight components, so different noise lands on different colours.
BASE = GenerationRequest(prompt="circle", model="toy", sampler="euler", steps=10, cfg_scale=3.0, seed=5,
                         width=32, height=32)
SHAPE = (1, 3, 32, 32)


@pytest.fixture
def runner():
    return Runner(ToyShapesModel())


def _column_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between each (channel, column) vector of two [1, C, H, W] tensors (vectors along H)."""
    cos = (a * b).sum(-2) / (a.norm(dim=-2) * b.norm(dim=-2))
    return cos.clamp(-1, 1).acos()


def test_slerp_halves_the_angle_between_unit_vectors():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    mid = slerp(0.5, a, b, dim=1)
    assert torch.allclose(mid, torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]))
    assert torch.allclose(slerp(0.0, a, b, dim=1), a) and torch.allclose(slerp(1.0, a, b, dim=1), b)


def test_slerp_of_parallel_vectors_does_not_divide_by_zero():
    a = torch.tensor([[3.0, 4.0]])
    assert torch.equal(slerp(0.3, a, a, dim=1), a)


def test_strength_zero_is_the_seed_noise_bit_for_bit(runner):
    plain = runner.run(BASE)
    varied = runner.run(BASE.with_changes(variation_seed=99, variation_strength=0.0))
    assert np.array_equal(plain.latent, varied.latent) and np.array_equal(plain.image, varied.image)
    # ... and that noise is the seed's generator's first draw, as before variation seeds existed.
    first_draw = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    assert torch.equal(runner.history(varied.run_id).noise, first_draw)


def test_strength_one_is_the_variation_seeds_image(runner):
    varied = runner.run(BASE.with_changes(variation_seed=77, variation_strength=1.0))
    other = runner.run(BASE.with_changes(seed=77))
    assert np.array_equal(varied.latent, other.latent) and np.array_equal(varied.image, other.image)
    assert not np.array_equal(varied.image, runner.run(BASE).image)  # the variation seed's image differs


def test_partial_strength_is_a1111s_slerp_along_each_column():
    seed_noise = initial_noise(SHAPE, torch.Generator().manual_seed(5))
    var_noise = initial_noise(SHAPE, torch.Generator().manual_seed(77))
    omega = _column_angles(seed_noise, var_noise)  # [1, C, W]
    for t in (0.25, 0.5, 0.8):
        mixed = initial_noise(SHAPE, torch.Generator().manual_seed(5), 77, t)
        # Each (channel, column) vector along H is sin((1-t)w)/sin(w) * seed + sin(tw)/sin(w) * variation.
        for c, w in ((0, 0), (1, 17), (2, 31)):
            basis = torch.stack([seed_noise[0, c, :, w], var_noise[0, c, :, w]], dim=1).double()
            coef = torch.linalg.lstsq(basis, mixed[0, c, :, w, None].double()).solution.flatten()
            o = float(omega[0, c, w])
            expected = torch.tensor([math.sin((1 - t) * o), math.sin(t * o)], dtype=torch.double) / math.sin(o)
            assert torch.allclose(coef, expected, atol=1e-4), (t, c, w)


def test_half_strength_image_differs_from_both_ends(runner):
    half = runner.run(BASE.with_changes(variation_seed=77, variation_strength=0.5)).latent
    ends = [runner.run(BASE).latent, runner.run(BASE.with_changes(seed=77)).latent]
    assert all(not np.array_equal(half, end) for end in ends)


@pytest.mark.parametrize("sampler", ["euler", "euler_a"])
def test_seed_with_variation_reproduces_and_branches_exactly(runner, sampler):
    request = BASE.with_changes(sampler=sampler, variation_seed=77, variation_strength=0.3)
    full = runner.run(request)
    again = Runner(ToyShapesModel()).run(request)
    assert np.array_equal(full.image, again.image) and np.array_equal(full.latent, again.latent)
    for k in (0, 4, 8):
        assert np.array_equal(runner.run(request, branch_from=(full.run_id, k)).latent, full.latent)


def test_later_noise_comes_from_the_main_seed(runner):
    """Ancestral samplers keep drawing from the seed's generator, not the variation seed's."""
    request = BASE.with_changes(sampler="euler_a")
    plain = runner.run(request)
    varied = runner.run(request.with_changes(variation_seed=77, variation_strength=1.0))
    plain_states, varied_states = runner.history(plain.run_id).states, runner.history(varied.run_id).states
    assert all(torch.equal(a.rng_state, b.rng_state) for a, b in zip(plain_states, varied_states, strict=True))
    # So a full-strength variation is not the variation seed's own image under an ancestral sampler.
    assert not np.array_equal(varied.latent, runner.run(request.with_changes(seed=77)).latent)


@pytest.mark.parametrize("changes", [{"variation_strength": 1.5}, {"variation_strength": -0.1},
                                     {"variation_strength": float("nan")}, {"variation_seed": -1},
                                     {"variation_seed": 2**63}, {"variation_seed": 1.5}])
def test_bad_variation_settings_name_the_field(runner, changes):
    with pytest.raises(RequestError) as info:
        runner.run(BASE.with_changes(**changes))
    assert info.value.field == next(iter(changes))


# -- parameters text and the command line -------------------------------------------------------------

def test_the_parameters_text_round_trips_and_reads_a1111s_keys():
    from studio.io.parameters import format_parameters, parse_parameters

    request = BASE.with_changes(variation_seed=77, variation_strength=0.3)
    text = format_parameters(request)
    assert "Seed: 5, Size: 32x32, Model: toy, Variation seed: 77, Variation seed strength: 0.3" in text
    back = parse_parameters(text).request
    assert (back.variation_seed, back.variation_strength) == (77, 0.3)
    assert "Variation" not in format_parameters(BASE.with_changes(variation_seed=77))  # off: not written
    a1111 = ("a cat\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1234, "
             "Size: 512x512, Model hash: 6ce0161689, Model: v1-5, Variation seed: 3046914137, "
             "Variation seed strength: 0.25, Version: v1.10.1")
    parsed = parse_parameters(a1111)
    assert (parsed.request.variation_seed, parsed.request.variation_strength) == (3046914137, 0.25)
    assert "Variation seed" not in parsed.unknown


def test_settings_without_a_variation_turn_it_off():
    """An image written without the keys was made without a variation: restoring it over a panel
    that has one on must not keep it, or the same settings would draw another picture."""
    from studio.io.parameters import parse_parameters

    on = BASE.with_changes(variation_seed=9, variation_strength=0.5)
    assert parse_parameters("a cat\nSteps: 20, Seed: 3, Size: 32x32", base=on).request.variation_strength == 0
    assert parse_parameters("just a prompt line", base=on).request.variation_strength == 0.5


def test_out_of_range_values_in_the_text_are_adapted_with_a_notice():
    from studio.io.parameters import parse_parameters

    parsed = parse_parameters("x\nSteps: 20, Seed: 3, Variation seed: -4, Variation seed strength: 7")
    assert (parsed.request.variation_seed, parsed.request.variation_strength) == (0, 1.0)
    assert len(parsed.notices) == 2


def test_cli_flags_write_the_variation_and_params_from_reproduces_it(tmp_path, capsys):
    from PIL import Image

    from studio.cli import main
    from studio.io.parameters import parse_parameters
    from studio.io.png import read_parameters

    out, again = tmp_path / "v.png", tmp_path / "again.png"
    def common(seed: int) -> list[str]:
        return ["generate", "--model", "toy", "--prompt", "circle", "--sampler", "euler", "--steps", "6",
                "--seed", str(seed), "--width", "32", "--height", "32", "--quiet"]

    assert main([*common(5), "--variation-seed", "77", "--variation-strength", "1", "--out", str(out)]) == 0
    request = parse_parameters(read_parameters(out)).request
    assert (request.variation_seed, request.variation_strength) == (77, 1.0)
    plain = tmp_path / "seed77.png"
    assert main([*common(77), "--out", str(plain)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(plain)))
    assert main(["generate", "--params-from", str(out), "--quiet", "--out", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))
    assert main([*common(5), "--variation-strength", "2", "--out", str(tmp_path / "bad.png")]) == 2
    assert "variation_strength: must be between 0 and 1, got 2.0" in capsys.readouterr().err
