"""Hires fix on a tiny random Stable Diffusion model: the latent and the pixel (Lanczos) upscale through
its real VAE, reproduced with the same seed and branched bit-exactly from either pass."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_diffusers  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

REQUEST = GenerationRequest(prompt="a lighthouse", negative_prompt="blurry", sampler="dpmpp_2m", steps=3,
                            cfg_scale=5.0, seed=11, width=64, height=64, hires_scale=2.0, hires_steps=2,
                            hires_denoise=0.5)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    folder = save_diffusers(build_random("sd1", seed=4), tmp_path_factory.mktemp("Stable-diffusion") / "tiny_sd1")
    return Runner(load_sd_model(folder, tiny_decoder=False))


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_hires_fix_on_stable_diffusion(runner, upscaler):
    request = REQUEST.with_changes(hires_upscaler=upscaler)
    events = []
    full = runner.run(request, on_step=events.append)
    assert full.image.shape == (128, 128, 3) and full.latent.shape == (4, 16, 16)
    assert [e.latent.shape[-1] for e in events] == [8, 8, 8, 16, 16]
    assert np.array_equal(full.image, runner.run(request).image)
    for k in (1, 2, 3):  # first pass, its last step, the second pass
        branch = runner.run(request, branch_from=(full.run_id, k))
        assert np.array_equal(branch.latent, full.latent) and np.array_equal(branch.image, full.image), k
