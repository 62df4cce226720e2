"""Prompt editing and alternation in the engine: the conditioning switches per step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest
from studio.engine.runner import Runner

BASE = GenerationRequest(prompt="[red circle:blue square:0.5]", model="toy", sampler="euler", steps=10,
                         cfg_scale=3.0, seed=3, width=32, height=32)


class RecordingToy(ToyShapesModel):
    """The toy model, noting which prompt (by its encoding) each network evaluation is given."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (cond logw, uncond logw) per evaluation
        self.encoded: list[tuple[str, str]] = []

    def encode_prompt(self, prompt, negative_prompt, width, height, clip_skip=1):
        self.encoded.append((prompt, negative_prompt))
        return super().encode_prompt(prompt, negative_prompt, width, height, clip_skip)

    def denoiser(self):
        inner = super().denoiser()

        def record(x, sigma, cond):
            logw = cond["logw"]  # guided: rows [cond, uncond] in one batch
            self.seen.append((logw[0].clone(), logw[-1].clone()))
            return inner(x, sigma, cond)

        return record

    def prompts_seen(self, which: int = 0) -> list[str]:
        """The prompt words of each evaluation, read back from the encodings."""
        names = {}
        for prompt, negative in self.encoded:
            cond, uncond = ToyShapesModel.encode_prompt(self, prompt, negative, 32, 32)
            names.setdefault(prompt, cond["logw"][0])
            names.setdefault(f"neg:{negative}", uncond["logw"][0])
        out = []
        for row in self.seen:
            out.append(next(name for name, logw in names.items() if torch.equal(logw, row[which])))
        return out


def test_an_edit_switches_the_conditioning_at_its_step():
    model = RecordingToy()
    Runner(model).run(BASE)
    assert model.prompts_seen() == ["red circle"] * 5 + ["blue square"] * 5
    assert sorted(model.encoded) == [("blue square", ""), ("red circle", "")]  # each prompt encoded once


def test_every_evaluation_of_a_step_sees_that_steps_prompt():
    model = RecordingToy()
    Runner(model).run(BASE.with_changes(sampler="heun"))
    # Heun evaluates twice per step (once on the last): step 5's second look, at sigma_5, is still red.
    assert model.prompts_seen() == ["red circle"] * 10 + ["blue square"] * 9


def test_alternation_cycles_per_step_and_is_encoded_once_per_option():
    model = RecordingToy()
    Runner(model).run(BASE.with_changes(prompt="[red|blue] circle", steps=6))
    assert model.prompts_seen() == ["red circle", "blue circle"] * 3
    assert len(model.encoded) == 2


def test_the_negative_prompt_is_scheduled_too():
    model = RecordingToy()
    Runner(model).run(BASE.with_changes(prompt="circle", negative_prompt="[red::4]", steps=8))
    assert model.prompts_seen(which=1) == ["neg:red"] * 4 + ["neg:"] * 4


def test_an_edit_changes_the_picture_and_a_plain_prompt_is_unchanged():
    runner = Runner(ToyShapesModel())
    edited = runner.run(BASE.with_changes(prompt="[red circle:blue circle:0.3]", sampler="euler_a"))
    red = runner.run(BASE.with_changes(prompt="red circle", sampler="euler_a"))
    blue = runner.run(BASE.with_changes(prompt="blue circle", sampler="euler_a"))
    centre = edited.image[12:20, 12:20].astype(int).mean(axis=(0, 1))
    assert centre[2] > 150 and centre[0] < 100  # ends blue: the later steps decide the colour
    assert not np.array_equal(edited.image, red.image)
    assert not np.array_equal(edited.latent, blue.latent)  # the first steps were red


@pytest.mark.parametrize("sampler", ["euler", "euler_a", "heun", "dpmpp_2m", "ddim"])
@pytest.mark.parametrize("prompt", ["[red circle:blue square:0.5]", "[red|blue] [circle|ring]"])
def test_branching_from_a_step_reproduces_an_edited_run(sampler, prompt):
    runner = Runner(ToyShapesModel())
    request = BASE.with_changes(prompt=prompt, sampler=sampler)
    full = runner.run(request)
    for k in (4, 5):  # the last step before the switch, and the first after
        assert np.array_equal(runner.run(request, branch_from=(full.run_id, k)).latent, full.latent), k


def test_a_branch_with_more_steps_schedules_over_the_whole_lineage():
    model = RecordingToy()
    runner = Runner(model)
    full = runner.run(BASE.with_changes(prompt="circle"))
    model.seen.clear()
    events = []
    runner.run(BASE.with_changes(steps=20), branch_from=(full.run_id, 3), on_step=events.append)
    # Steps 1-4 came from the parent; the 20-step lineage switches after step 10.
    lineage = [e.index + 1 for e in events]
    assert lineage[0] == 5 and events[0].total == lineage[-1]
    switch = events[0].total // 2
    assert model.prompts_seen() == ["red circle" if s <= switch else "blue square" for s in lineage]


def test_img2img_schedules_over_the_steps_it_runs():
    model = RecordingToy()
    init = np.full((32, 32, 3), 128, np.uint8)
    result = Runner(model).run(BASE.with_changes(init_image=init, strength=0.6))
    assert result.steps_run == 6
    assert model.prompts_seen() == ["red circle"] * 3 + ["blue square"] * 3


def test_inpainting_with_resample_keeps_each_steps_prompt():
    model = RecordingToy()
    init = np.full((32, 32, 3), 128, np.uint8)
    mask = np.ones((32, 32), np.float32)
    Runner(model).run(BASE.with_changes(steps=4, init_image=init, mask=mask, resample=1))
    # Steps 1-3 take a RePaint pass before the real step (two evaluations each); the last step one.
    assert model.prompts_seen() == ["red circle"] * 4 + ["blue square"] * 3


def record_conds(model) -> list:
    """Wrap ``model.denoiser`` to note the cond each evaluation is given."""
    seen, inner = [], model.denoiser

    def denoiser():
        denoise = inner()

        def record(x, sigma, cond):
            seen.append(cond)
            return denoise(x, sigma, cond)

        return record

    model.denoiser = denoiser
    return seen
