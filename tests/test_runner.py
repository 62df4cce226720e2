"""The runner: determinism, branching, cancellation, img2img, inpainting, errors."""

import numpy as np
import pytest
import torch

from studio.engine.models.toy import ToyShapesModel, render
from studio.engine.request import GenerationRequest, RequestError
from studio.engine.runner import Cancelled, NonFiniteError, Runner
from studio.engine.samplers import SAMPLERS

BASE = GenerationRequest(prompt="red circle", model="toy", steps=12, cfg_scale=3.0, seed=5, width=32, height=32)


@pytest.fixture
def runner():
    return Runner(ToyShapesModel())


def test_same_request_same_pixels(runner):
    a = runner.run(BASE)
    b = Runner(ToyShapesModel()).run(BASE)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.latent, b.latent)
    assert not np.array_equal(a.image, runner.run(BASE.with_changes(seed=6)).image)


def test_prompt_is_followed(runner):
    img = runner.run(BASE).image.astype(int)
    centre = img[12:20, 12:20].mean(axis=(0, 1))
    assert centre[0] > 150 and centre[1] < 100 and centre[2] < 100  # red in the middle


def test_one_event_per_step(runner):
    events = []
    result = runner.run(BASE, on_step=events.append)
    assert [e.index for e in events] == list(range(12))
    assert all(e.total == 12 and e.preview.shape == (32, 32, 3) and e.preview.dtype == np.uint8 for e in events)
    assert events[0].sigma > events[-1].sigma
    assert np.array_equal(events[-1].latent, result.latent)


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_branch_with_unchanged_settings_is_bit_exact(runner, sampler):
    request = BASE.with_changes(sampler=sampler)
    full = runner.run(request)
    for k in (0, 5, 10):
        branch = runner.run(request, branch_from=(full.run_id, k))
        assert np.array_equal(branch.latent, full.latent), (sampler, k)
        assert branch.steps_run == 12 - (k + 1) and branch.parent == (full.run_id, k)


def test_branch_of_a_branch_and_changed_settings(runner):
    full = runner.run(BASE)
    b1 = runner.run(BASE, branch_from=(full.run_id, 3))
    b2 = runner.run(BASE, branch_from=(b1.run_id, 7))
    assert np.array_equal(b2.latent, full.latent)
    events = []
    changed = runner.run(BASE.with_changes(prompt="blue square", steps=20), on_step=events.append,
                         branch_from=(full.run_id, 2))
    assert events[0].index == 3  # the branch's steps follow the parent's
    assert not np.array_equal(changed.image, full.image)


def test_cancel_then_next_run_is_identical_to_fresh(runner):
    fresh = Runner(ToyShapesModel()).run(BASE.with_changes(sampler="euler_a"))
    for stop_at in np.random.default_rng(0).integers(1, 12, size=3):
        seen = []
        with pytest.raises(Cancelled) as info:
            runner.run(BASE.with_changes(sampler="euler_a"), on_step=seen.append,
                       should_cancel=lambda seen=seen, stop_at=stop_at: len(seen) >= stop_at)
        assert info.value.step == stop_at and len(seen) == stop_at
        assert np.array_equal(runner.run(BASE.with_changes(sampler="euler_a")).image, fresh.image)


def test_img2img_strength_zero_returns_init(runner):
    init = render("square", "green", 32, 32)
    result = runner.run(BASE.with_changes(init_image=init, strength=0.0))
    assert result.steps_run == 0 and np.array_equal(result.image, init)
    half = runner.run(BASE.with_changes(init_image=init, strength=0.5))
    assert half.steps_run == 6


@pytest.mark.parametrize("sampler", ["euler", "dpmpp_2m", "euler_a", "heun"])
def test_hard_mask_keeps_known_region_exactly(runner, sampler):
    init = render("square", "green", 32, 32)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    result = runner.run(BASE.with_changes(sampler=sampler, init_image=init, mask=mask, strength=1.0, resample=1))
    keep = mask == 0
    assert np.array_equal(result.image[keep], init[keep])
    # The known region is exact in the latent too, before the pixel composite.
    latent_img = ((result.latent.transpose(1, 2, 0).clip(-1, 1) + 1) * 127.5).round().astype(np.uint8)
    assert np.array_equal(latent_img[keep], init[keep])
    assert not np.array_equal(result.image[~keep], init[~keep])


def test_feathered_mask_keeps_far_region_and_blends_edge(runner):
    init = render("square", "green", 32, 32)
    mask = np.zeros((32, 32), np.float32)
    mask[:, 16:] = 1
    result = runner.run(BASE.with_changes(init_image=init, mask=mask, mask_feather=4.0))
    assert np.array_equal(result.image[:, :8], init[:, :8])


@pytest.mark.parametrize("changes, field", [
    ({"sampler": "lms"}, "sampler"), ({"steps": 0}, "steps"), ({"strength": 1.5}, "strength"),
    ({"width": 30}, "width"), ({"cfg_scale": float("nan")}, "cfg_scale"), ({"seed": -1}, "seed"),
    ({"guidance_interval": (2.0, 1.0)}, "guidance_interval"), ({"guidance_rescale": 2.0}, "guidance_rescale"),
    ({"init_image": np.zeros((16, 16, 3), np.uint8)}, "init_image"),
    ({"init_image": np.zeros((32, 32, 3), np.uint8), "mask": np.zeros((8, 8), np.float32)}, "mask"),
    ({"mask": np.zeros((32, 32), np.float32)}, "mask"),
])
def test_bad_input_names_the_field(runner, changes, field):
    with pytest.raises(RequestError) as info:
        runner.run(BASE.with_changes(**changes))
    assert info.value.field == field and field in str(info.value)


def test_branch_errors_are_readable(runner):
    full = runner.run(BASE)
    with pytest.raises(RequestError, match="has steps 0 to 11"):
        runner.run(BASE, branch_from=(full.run_id, 40))
    with pytest.raises(RequestError, match="no longer kept"):
        runner.run(BASE, branch_from=(999, 0))


def test_non_finite_latent_in_branch_is_refused(runner):
    full = runner.run(BASE)
    runner.history(full.run_id).states[4].x[0, 0, 0, 0] = float("nan")
    with pytest.raises(RequestError, match="NaN"):
        runner.run(BASE, branch_from=(full.run_id, 4))


def test_model_nans_become_a_readable_error(runner):
    model = ToyShapesModel()
    model.denoiser = lambda: (lambda x, s, c: torch.full_like(x, float("nan")))
    with pytest.raises(NonFiniteError, match="step 1"):
        Runner(model).run(BASE)


def _nearest_shape(model, image):
    means = model.means(32, 32)
    from studio.engine.models.base import image_to_unit

    k = int(torch.cdist(image_to_unit(image).flatten(1), means).argmin())
    return model.components[k][0]


def test_classifier_guidance_steers_toward_the_label():
    # cfg 0 samples the unconditional model (all 40 shapes alike); the classifier asks for a triangle.
    model = ToyShapesModel()
    runner = Runner(model)
    free = BASE.with_changes(prompt="triangle", cfg_scale=0.0)
    def triangles(scale):
        return sum(_nearest_shape(model, runner.run(free.with_changes(classifier_scale=scale, seed=s)).image)
                   == "triangle" for s in range(16))
    unguided, guided = triangles(0.0), triangles(2.0)
    assert unguided <= 8 and guided >= 14, (unguided, guided)


def test_history_is_bounded():
    runner = Runner(ToyShapesModel(), keep_histories=3)
    ids = [runner.run(BASE.with_changes(steps=2)).run_id for _ in range(5)]
    assert runner.history(ids[0]) is None and runner.history(ids[-1]) is not None


def test_a_cancelled_run_can_be_branched_from(runner):
    full = Runner(ToyShapesModel()).run(BASE)
    seen = []
    with pytest.raises(Cancelled) as info:
        runner.run(BASE, on_step=seen.append, should_cancel=lambda: len(seen) >= 6)
    resumed = runner.run(BASE, branch_from=(info.value.run_id, 5))
    assert np.array_equal(resumed.image, full.image)
    with pytest.raises(RequestError, match="has steps 0 to 5"):
        runner.run(BASE, branch_from=(info.value.run_id, 6))
