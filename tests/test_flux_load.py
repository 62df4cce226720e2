"""Flux.1 through the studio's one loader (load_flow_model): every layout users keep, fp8 and GGUF included."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("diffusers")

from studio.engine.models.flow.load import load_flow_model  # noqa: E402
from studio.engine.models.flow.testing_files import save_fp8, save_gguf  # noqa: E402
from studio.engine.models.flow.testing_flux import (  # noqa: E402
    build_random_flux,
    save_all_in_one,
    save_diffusers,
    save_split,
    transformer_file_state,
)
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

REQUEST = GenerationRequest(prompt="a boat", width=32, height=32, steps=2, seed=4, cfg_scale=1.0, sampler="euler",
                            spacing="trailing")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux-load")
    random = build_random_flux("dev", seed=3)
    folder = save_diffusers(random, root / "FLUX.1-tiny")
    reference = Runner(load_flow_model(folder)).run(REQUEST).latent
    return root, random, reference


def run(model) -> np.ndarray:
    return Runner(model).run(REQUEST).latent


def test_split_files_are_found_beside_the_transformer(saved):
    root, random, reference = saved
    files = save_split(random, root / "ComfyUI")
    model = load_flow_model(files.transformer)
    assert model.info.family == "flux" and model.variant == "dev"
    assert np.allclose(run(model), reference, atol=1e-5)
    parts = {p.part for p in model.load_report.parts}
    assert {"transformer", "clip_l", "t5xxl", "vae"} <= parts


def test_all_in_one_checkpoint(saved):
    root, random, reference = saved
    assert np.allclose(run(load_flow_model(save_all_in_one(random, root / "aio.safetensors"))), reference, atol=1e-5)


@pytest.mark.parametrize("kind", ["fp8", "fp8 scaled", "gguf Q8_0"])
def test_quantised_transformer_files(saved, kind):
    root, random, reference = saved
    files = save_split(random, root / "ComfyUI")
    folder = root / "ComfyUI" / "models" / "diffusion_models"
    state = transformer_file_state(random)
    if kind.startswith("fp8"):
        path = save_fp8(state, folder / f"flux-{kind.replace(' ', '-')}.safetensors", scaled="scaled" in kind)
    else:
        path = save_gguf(state, folder / "flux-Q8_0.gguf", family="flux")
    model = load_flow_model(path, text_encoders=files.text_encoders.values(), vae=files.vae)
    latent = run(model)
    assert np.isfinite(latent).all() and np.abs(latent - reference).mean() < 0.1 * np.abs(reference).mean()


def test_lone_transformer_folder_with_encoder_and_vae_files(saved, tmp_path):
    root, random, reference = saved
    files = save_split(random, root / "ComfyUI")
    lone = tmp_path / "transformer"
    shutil.copytree(root / "FLUX.1-tiny" / "transformer", lone)
    model = load_flow_model(lone, text_encoders=files.text_encoders.values(), vae=files.vae)
    assert np.allclose(run(model), reference, atol=1e-5)


def test_fill_is_detected_and_loaded_as_an_inpainting_model(tmp_path):
    model = load_flow_model(save_all_in_one(build_random_flux("fill"), tmp_path / "flux1-fill-dev.safetensors"))
    assert model.variant == "fill" and model.info.inpainting and model.info.recommended.distilled_cfg == 30.0


def test_command_line_takes_the_models_advice_unless_told(saved, tmp_path):
    """No --steps/--cfg/--spacing/--guidance: Flux dev's own (20 steps, CFG 1, trailing from pure noise, 3.5)."""
    from studio.cli import main
    from studio.io.png import read_parameters

    root, random, _ = saved
    checkpoint = save_all_in_one(random, root / "advice.safetensors")
    out = tmp_path / "advised.png"
    assert main(["generate", "--model", str(checkpoint), "--prompt", "a boat", "--width", "32", "--height", "32",
                 "--seed", "1", "--quiet", "--out", str(out)]) == 0
    text = read_parameters(out)
    assert "Steps: 20," in text and "CFG scale: 1," in text and "Distilled CFG Scale: 3.5" in text
    assert "Schedule type: Trailing," in text
    told = tmp_path / "told.png"
    assert main(["generate", "--model", str(checkpoint), "--prompt", "a boat", "--width", "32", "--height", "32",
                 "--steps", "2", "--cfg", "2", "--spacing", "linspace", "--guidance", "4", "--quiet",
                 "--out", str(told)]) == 0
    text = read_parameters(told)
    assert "Steps: 2," in text and "CFG scale: 2," in text and "Distilled CFG Scale: 4" in text
    assert "Schedule type: Linspace," in text
