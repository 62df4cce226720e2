"""studio/engine/run_export.py: a run exported after step k and adopted by another runner branches bit for bit
as the runner that ran it does, for single-step, ancestral and multistep samplers, the hires fix and inpainting."""

import numpy as np
import pytest
import torch

from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest, RequestError
from studio.engine.run_export import append_states, export_history, import_history
from studio.engine.runner import Runner


def _inpaint(request: GenerationRequest) -> GenerationRequest:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 4:20] = 1.0
    return request.with_changes(init_image=image, mask=mask, strength=0.8, mask_feather=2.0)


CASES = {
    "euler": (GenerationRequest(model="toy", sampler="euler", steps=8, seed=3), 3, {}),
    "euler_a": (GenerationRequest(model="toy", sampler="euler_a", steps=8, seed=4), 4, {"cfg_scale": 2.0}),
    "dpmpp_2m": (GenerationRequest(model="toy", sampler="dpmpp_2m", steps=9, seed=5, spacing="karras"), 5, {}),
    "ddim_eta": (GenerationRequest(model="toy", sampler="ddim", steps=8, seed=6, eta=0.5), 2, {"eta": 0.3}),
    "hires_second_pass": (GenerationRequest(model="toy", sampler="dpmpp_2m", steps=5, seed=7, hires_scale=2.0,
                                            hires_steps=4, hires_denoise=0.6), 6, {}),
    "hires_first_pass": (GenerationRequest(model="toy", sampler="euler_a", steps=5, seed=8, hires_scale=2.0,
                                           hires_steps=4), 2, {"cfg_scale": 3.0}),
    "inpaint": (_inpaint(GenerationRequest(model="toy", sampler="dpmpp_2m", steps=10, seed=9, resample=1)), 4, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_adopted_history_branches_as_the_original(case):
    request, k, changes = CASES[case]
    original = Runner(ToyShapesModel())
    first = original.run(request)
    blob = export_history(original.history(first.run_id), upto=k)
    other = Runner(ToyShapesModel())  # another model instance, as another replica has
    other.run(request.with_changes(seed=99))  # its own run ids are taken: the adopted one gets a new id
    adopted = other.adopt(import_history(blob))
    for branch in (request, request.with_changes(**changes)):
        expected = original.run(branch, branch_from=(first.run_id, k))
        got = other.run(branch, branch_from=(adopted, k))
        assert np.array_equal(got.latent, expected.latent)
        assert np.array_equal(got.image, expected.image)
        assert got.steps_run == expected.steps_run
    if not changes:  # an unchanged branch replays the uninterrupted run
        assert np.array_equal(got.latent, first.latent)


def test_blob_holds_only_the_steps_up_to_k_and_no_pickle():
    runner = Runner(ToyShapesModel())
    result = runner.run(CASES["dpmpp_2m"][0])
    blob = export_history(runner.history(result.run_id), upto=2)
    assert b"pickle" not in blob and not blob.startswith(b"\x80")
    history = import_history(blob)
    assert len(history.states) == 3
    assert isinstance(history.states[2].carry, tuple) and torch.is_tensor(history.states[2].carry[0])
    with pytest.raises(RequestError, match="steps 0 to 2, not 4"):
        runner.run(CASES["dpmpp_2m"][0], branch_from=(runner.adopt(history), 4))


def test_steps_sent_in_pieces_add_up_to_the_whole():
    runner = Runner(ToyShapesModel())
    request = CASES["hires_second_pass"][0]
    result = runner.run(request)
    whole = runner.history(result.run_id)
    history = import_history(export_history(whole, upto=2))
    append_states(history, export_history(whole, first=3, upto=6, header=False))
    append_states(history, export_history(whole, first=7, header=False))
    assert history.hires_from == whole.hires_from and torch.equal(history.hires_sigmas, whole.hires_sigmas)
    other = Runner(ToyShapesModel())
    got = other.run(request, branch_from=(other.adopt(history), 7))
    assert np.array_equal(got.latent, runner.run(request, branch_from=(result.run_id, 7)).latent)
    with pytest.raises(RequestError, match="start at 3"):
        append_states(history, export_history(whole, first=3, header=False))


@pytest.mark.parametrize("blob", [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{}", b"not a blob at all"])
def test_garbage_is_a_request_error(blob):
    with pytest.raises(RequestError) as caught:
        import_history(blob)
    assert caught.value.field == "branch"
