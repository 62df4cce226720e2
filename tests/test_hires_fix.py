"""Hires fix: a first pass, an upscale, a second img2img pass at the larger size, as one run of the timeline.

The toy model (exact, pixel space) checks the run's shape, its determinism and branching from either
pass for every sampler; a tiny random Stable Diffusion model checks the latent and the pixel (Lanczos)
upscales through a real VAE.
"""

import importlib.util

import numpy as np
import pytest

import studio.engine.runner as runner_module
from studio.engine.hires_settings import LATENT_UPSCALERS, hires_size, hires_step_counts
from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest, RequestError, validate_request
from studio.engine.runner import Runner
from studio.engine.samplers import SAMPLERS

HIRES = GenerationRequest(prompt="red circle", steps=6, cfg_scale=3.0, seed=5, width=32, height=32, sampler="euler_a",
                          hires_scale=2.0, hires_steps=4, hires_denoise=0.6)


@pytest.fixture
def runner():
    return Runner(ToyShapesModel())


def test_two_passes_in_one_run_the_second_at_the_larger_size(runner):
    events = []
    result = runner.run(HIRES, on_step=events.append)
    assert [e.index for e in events] == list(range(10))  # 6 first-pass steps, then the 4 of the second
    assert all(e.total == 10 for e in events)
    assert [e.preview.shape for e in events] == [(32, 32, 3)] * 6 + [(64, 64, 3)] * 4
    assert [e.latent.shape for e in events][5:7] == [(3, 32, 32), (3, 64, 64)]
    assert [e.hires_start for e in events] == [False] * 6 + [True] + [False] * 3
    assert events[6].sigma < events[0].sigma  # denoise 0.6: the second pass starts part-way down
    assert result.image.shape == (64, 64, 3) and result.steps_run == 10
    assert np.array_equal(events[-1].latent, result.latent)
    assert result.request is HIRES  # the parameters text is written from the request as given


def test_same_seed_same_pixels_and_hires_changes_the_picture(runner):
    a = runner.run(HIRES)
    b = Runner(ToyShapesModel()).run(HIRES)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.latent, b.latent)
    assert not np.array_equal(a.image, runner.run(HIRES.with_changes(seed=6)).image)
    assert not np.array_equal(a.image, runner.run(HIRES.with_changes(hires_denoise=0.3)).image)
    plain = runner.run(HIRES.with_changes(hires_scale=0.0))
    assert plain.image.shape == (32, 32, 3) and plain.steps_run == 6
    assert np.array_equal(plain.image, runner.run(HIRES.with_changes(hires_scale=1.0)).image)  # 1 is off too


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_branching_from_either_pass_is_bit_exact(runner, sampler):
    request = HIRES.with_changes(sampler=sampler)
    full = runner.run(request)
    for k in (0, 5, 6, 8, 9):  # first pass, its last step, the second pass's first step, later ones
        branch = runner.run(request, branch_from=(full.run_id, k))
        assert np.array_equal(branch.latent, full.latent), (sampler, k)
        assert np.array_equal(branch.image, full.image) and branch.steps_run == 10 - (k + 1)


def test_branch_of_a_branch_and_branch_events_follow_the_parent(runner):
    full = runner.run(HIRES)
    first = runner.run(HIRES, branch_from=(full.run_id, 2))
    second = runner.run(HIRES, branch_from=(first.run_id, 7))
    third = runner.run(HIRES, branch_from=(second.run_id, 4))  # back in the first pass of a second-pass branch
    assert all(np.array_equal(r.latent, full.latent) for r in (first, second, third))
    events = []
    runner.run(HIRES, on_step=events.append, branch_from=(full.run_id, 7))
    assert [e.index for e in events] == [8, 9] and all(e.total == 10 for e in events)
    assert all(e.preview.shape == (64, 64, 3) and not e.hires_start for e in events)


def test_branching_with_changed_second_pass_settings(runner):
    full = runner.run(HIRES)
    events = []
    # From the first pass's last step with another denoise: the second pass is run anew.
    changed = runner.run(HIRES.with_changes(hires_denoise=0.3), on_step=events.append, branch_from=(full.run_id, 5))
    assert [e.index for e in events] == [6, 7, 8, 9] and events[0].hires_start
    assert np.array_equal(changed.latent, runner.run(HIRES.with_changes(hires_denoise=0.3)).latent)
    # From a second-pass step with more hires steps: it continues from that step's noise level.
    events.clear()
    more = runner.run(HIRES.with_changes(hires_steps=8), on_step=events.append, branch_from=(full.run_id, 7))
    assert events[0].index == 8 and events[0].sigma <= runner.history(full.run_id).states[7].sigma_next + 1e-6
    assert more.image.shape == (64, 64, 3)
    with pytest.raises(RequestError, match="hires fix's pass") as err:
        runner.run(HIRES.with_changes(hires_scale=0.0), branch_from=(full.run_id, 7))
    assert err.value.field == "hires_scale"
    # A run without hires fix gains a second pass when branched from its last step with hires fix on.
    plain = runner.run(HIRES.with_changes(hires_scale=0.0))
    grown = runner.run(HIRES, branch_from=(plain.run_id, 5))
    assert np.array_equal(grown.latent, runner.run(HIRES).latent)


@pytest.mark.parametrize("upscaler", [*LATENT_UPSCALERS, "lanczos", "latent (NEAREST-exact)"])
def test_every_upscaler(runner, upscaler):
    request = HIRES.with_changes(hires_upscaler=upscaler, width=24, height=16, hires_scale=1.5)
    result = runner.run(request)
    assert result.image.shape == (24, 32, 3)  # 36x24 brought down to the model's multiple of 8
    assert np.array_equal(result.latent, runner.run(request).latent)


def test_denoise_zero_is_the_upscale_alone(runner):
    events = []
    result = runner.run(HIRES.with_changes(hires_denoise=0.0, hires_upscaler="Latent (nearest)"), on_step=events.append)
    assert len(events) == 6 and result.image.shape == (64, 64, 3)
    first = runner.run(HIRES.with_changes(hires_scale=0.0)).image
    assert np.array_equal(result.image, first.repeat(2, axis=0).repeat(2, axis=1))


def test_automatic1111_step_rule_and_size():
    assert hires_step_counts(20, 0, 0.5) == (40, 20)  # Hires steps 0: the first pass's count is run
    assert hires_step_counts(20, 10, 0.7) == (14, 10)
    assert hires_step_counts(20, 10, 1.0) == (10, 10)  # min(denoise, 0.999): int(10 / 0.999)
    assert hires_step_counts(20, 10, 0.0) == (0, 0)
    assert hires_size(512, 768, 1.5) == (768, 1152)
    assert hires_size(64, 40, 1.3) == (80, 48)  # 83x52 down to multiples of 8


@pytest.mark.parametrize(("changes", "field"), [
    ({"hires_scale": 4.5}, "hires_scale"),
    ({"hires_scale": 0.5}, "hires_scale"),
    ({"hires_scale": float("nan")}, "hires_scale"),
    ({"hires_steps": -1}, "hires_steps"),
    ({"hires_steps": 2.5}, "hires_steps"),
    ({"hires_denoise": 1.5}, "hires_denoise"),
    ({"hires_upscaler": " "}, "hires_upscaler"),
    ({"width": 1024, "hires_scale": 2.5}, "hires_scale"),  # 2560 px: past the toy model's 2048
    ({"refiner": "sd_xl_refiner_1.0"}, "hires_scale"),
    ({"init_image": np.zeros((32, 32, 3), np.uint8), "strength": 0.5}, "hires_scale"),
])
def test_bad_settings_are_refused_by_name(changes, field):
    with pytest.raises(RequestError) as err:
        validate_request(HIRES.with_changes(**changes), 8, 2048)
    assert err.value.field == field


def test_an_unknown_upscaler_is_named_before_the_first_pass(runner):
    events = []
    with pytest.raises(RequestError, match="no-such-upscaler") as err:
        runner.run(HIRES.with_changes(hires_upscaler="no-such-upscaler"), on_step=events.append)
    assert err.value.field == "hires_upscaler" and events == []


def test_an_upscaler_model_file_in_automatic1111s_folder(tmp_path):
    if importlib.util.find_spec("spandrel") is None:  # not importorskip: spandrel needs the studio's stand-in
        pytest.skip("spandrel is not installed (scripts/setup_env.sh installs it)")
    from studio.engine.models.sd.adapter_files import AdapterLibrary
    from studio.engine.upscalers.testing import save_rrdb

    save_rrdb(tmp_path / "models" / "ESRGAN" / "TinyESRGAN_x4.pth", seed=1)
    (tmp_path / "models" / "Stable-diffusion").mkdir()
    library = AdapterLibrary((tmp_path / "models" / "Stable-diffusion",), include_defaults=False)
    runner = Runner(ToyShapesModel(), adapters=library)
    request = HIRES.with_changes(hires_upscaler="tinyesrgan_x4")  # by name, any case, as A1111 lists it
    result = runner.run(request)
    assert result.image.shape == (64, 64, 3)
    assert np.array_equal(result.latent, runner.run(request, branch_from=(result.run_id, 5)).latent)
    assert not np.array_equal(result.image, runner.run(HIRES.with_changes(hires_upscaler="Lanczos")).image)


def test_memory_check_counts_the_second_pass(runner, monkeypatch):
    request = GenerationRequest(prompt="red circle", steps=20, width=512, height=512, hires_scale=2.0)
    plain = request.with_changes(hires_scale=0.0)
    host, _ = runner_module.run_memory_bytes(512, 512, 20, 3, 1, "toy")
    monkeypatch.setattr(runner_module, "free_memory_bytes", lambda device: host * 2)  # the first pass fits
    monkeypatch.setattr(runner_module.Runner, "_sample", lambda *args: pytest.fail("must not start"))
    with pytest.raises(RequestError, match="1024x1024"):
        runner.run(request)
    with pytest.raises(pytest.fail.Exception):  # without hires fix the same request starts
        runner.run(plain)
