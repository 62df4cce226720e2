"""SD 3.x as a user meets it: files in ComfyUI's folders found by load_flow_model, and the command line."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from studio.cli import main  # noqa: E402
from studio.engine.models.flow.load import load_flow_model  # noqa: E402
from studio.engine.models.flow.testing_sd3 import build_random_sd3, save_all_in_one, save_split  # noqa: E402


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    """A ComfyUI models/ tree (split files) and an all-in-one checkpoint beside it in models/checkpoints."""
    built = build_random_sd3("sd3", seed=3)
    models = tmp_path_factory.mktemp("ComfyUI") / "models"
    split = save_split(built, models, name="sd3.5_tiny")
    single = save_all_in_one(built, models / "checkpoints" / "sd3_tiny_incl_clips_t5.safetensors")
    return built, split, single


def test_the_split_files_are_found_beside_the_diffusion_model(comfy):
    built, split, _ = comfy
    model = load_flow_model(split["transformer"], device="cpu")
    assert model.info.family == "sd3" and model.load_notices == ()
    x, t = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0.6])
    cond, _ = model.encode_prompt("a red apple", "", 64, 64)
    with torch.no_grad():
        expected = built.transformer(hidden_states=x, timestep=t * 1000, encoder_hidden_states=cond["context"],
                                     pooled_projections=cond["pooled"], return_dict=False)[0]
    assert torch.equal(model.velocity(x, t, cond), expected)
    parts = " ".join(model.load_report.lines())
    for part in ("transformer", "clip_l", "clip_g", "t5xxl", "vae"):
        assert part in parts


def test_the_command_line_generates_with_an_all_in_one_file(comfy, tmp_path):
    _, _, single = comfy
    out = tmp_path / "sd3.png"
    code = main(["generate", "--model", str(single), "--prompt", "a red apple", "--negative", "blurry", "--steps", "2",
                 "--cfg", "4.5", "--sampler", "euler", "--seed", "1", "--width", "64", "--height", "64",
                 "--out", str(out), "--quiet"])
    assert code == 0
    image = np.asarray(Image.open(out))
    assert image.shape == (64, 64, 3)
    assert "Steps: 2" in Image.open(out).info["parameters"]
