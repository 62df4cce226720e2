"""Requests too big to run are refused before anything is allocated; resample is bounded and cancellable."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine import runner as runner_module
from studio.engine.limits import MAX_RESAMPLE, max_side, run_memory_bytes
from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest, RequestError, validate_request
from studio.engine.runner import Cancelled, Runner
from studio.io.parameters import parse_parameters

BASE = GenerationRequest(prompt="red circle", model="toy", steps=4, seed=5, width=32, height=32)


def test_a_huge_size_on_the_command_line_is_refused_at_once(tmp_path, capsys):
    started = time.perf_counter()
    code = main(["generate", "--model", "toy", "--width", "100000", "--height", "100000",
                 "--out", str(tmp_path / "x.png"), "--quiet"])
    assert code == 2 and time.perf_counter() - started < 5
    err = capsys.readouterr().err.strip()
    assert err == ("error: width: 100000 pixels is more than 'Toy shapes (built-in test model)' allows "
                   f"({max_side('toy')} at most); choose a smaller size")
    assert not (tmp_path / "x.png").exists()


def test_a_parsed_huge_size_is_refused_by_the_runner():
    parsed = parse_parameters("a cat\nSteps: 4, Sampler: Euler, Seed: 1, Size: 100000x100000, Model: toy").request
    with pytest.raises(RequestError, match=r"^width: 100000 pixels is more than .* allows \(2048 at most\)") as info:
        Runner(ToyShapesModel()).run(parsed.with_changes(model="toy"))
    assert info.value.field == "width"


def test_a_run_that_does_not_fit_in_memory_is_refused_before_allocating(monkeypatch):
    runner = Runner(ToyShapesModel())
    monkeypatch.setattr(runner_module, "free_memory_bytes", lambda device: 2**30)  # 1 GiB free
    big = BASE.with_changes(width=2048, height=2048, steps=200)  # the step history alone is ~19 GiB
    with pytest.raises(RequestError, match=r"^width: 2048x2048 with 200 steps needs at least 1[89]\.\d GiB of cpu "
                                           r"memory and 1\.0 GiB is free"):
        runner.run(big)
    assert runner.run(BASE).image.shape == (32, 32, 3)  # a run that fits still runs


def test_the_memory_estimate_counts_the_step_history():
    host, device = run_memory_bytes(512, 512, 50, 4, 8, "sd1")
    latent = 4 * 64 * 64 * 4
    assert host >= 2 * latent * 50 and device >= 64 * 64 * 4 * 32768 // 2
    assert run_memory_bytes(512, 512, 100, 4, 8, "sd1")[0] > host


def inpaint_files(tmp_path):
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "init.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[:, 16:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return ["--init", str(tmp_path / "init.png"), "--mask", str(tmp_path / "mask.png")]


def test_resample_is_bounded_on_the_command_line(tmp_path, capsys):
    code = main(["generate", "--model", "toy", *inpaint_files(tmp_path), "--resample", "1000000000",
                 "--out", str(tmp_path / "x.png"), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: resample: must be a whole number from 0 to {MAX_RESAMPLE} passes per step, got 1000000000")
    assert main(["generate", "--model", "toy", *inpaint_files(tmp_path), "--resample", str(MAX_RESAMPLE),
                 "--steps", "3", "--out", str(tmp_path / "y.png"), "--quiet"]) == 0


def test_a_cancel_lands_within_one_network_evaluation_while_resampling():
    model = ToyShapesModel()
    evaluations = []
    denoiser = model.denoiser

    def counting():
        inner = denoiser()

        def denoise(x, sigma, cond):
            evaluations.append(1)
            return inner(x, sigma, cond)

        return denoise

    model.denoiser = counting
    init = np.full((32, 32, 3), 90, np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[:, 16:] = 1
    request = BASE.with_changes(sampler="euler", steps=10, cfg_scale=1.0, init_image=init, mask=mask,
                                resample=MAX_RESAMPLE)
    asked_at = []

    def should_cancel():
        if len(evaluations) >= 5 and not asked_at:
            asked_at.append(len(evaluations))
        return bool(asked_at)

    with pytest.raises(Cancelled) as info:
        Runner(model).run(request, should_cancel=should_cancel)
    assert info.value.step == 0  # still in the first step's resampling passes
    assert len(evaluations) - asked_at[0] <= 1


@pytest.mark.parametrize("changes, field", [
    ({"resample": -1}, "resample"), ({"resample": MAX_RESAMPLE + 1}, "resample"),
    ({"mask_feather": 1e300}, "mask_feather"), ({"height": 4096}, "height"),
])
def test_limits_name_the_field(changes, field):
    with pytest.raises(RequestError) as info:
        Runner(ToyShapesModel()).run(BASE.with_changes(**changes))
    assert info.value.field == field


@pytest.mark.parametrize("name", ["cfg_scale", "classifier_scale"])
def test_guidance_scales_beyond_the_limit_are_refused_before_torch_sees_them(name):
    # 2**64 is finite for Python but overflowed torch's scalar conversion in the middle of a run (fuzz find).
    with pytest.raises(RequestError, match=name):
        validate_request(GenerationRequest(**{name: 2**64}))
    validate_request(GenerationRequest(**{name: 30.0}))
