"""Flux.1 from the files users have: BFL's single files with encoders and ae.safetensors apart (ComfyUI's
models/ folders), ComfyUI's all-in-one checkpoints, diffusers folders; the key conversion both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from studio.engine.models.errors import ModelLoadError  # noqa: E402
from studio.engine.models.flow.flux import load_flux  # noqa: E402
from studio.engine.models.flow.flux_layout import flux_config, flux_to_diffusers, flux_to_original  # noqa: E402
from studio.engine.models.flow.parts import ModelFiles  # noqa: E402
from studio.engine.models.flow.testing_flux import (  # noqa: E402
    build_random_flux,
    save_all_in_one,
    save_diffusers,
    save_split,
    transformer_file_state,
)
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

CPU = torch.device("cpu")
REQUEST = GenerationRequest(prompt="a lighthouse", width=48, height=32, steps=2, seed=5, cfg_scale=1.0,
                            sampler="euler", spacing="trailing")


@pytest.fixture(scope="module", params=["dev", "schnell"])
def saved(request, tmp_path_factory):
    """One random model in every layout, and the latent a run of its diffusers folder gives."""
    variant = request.param
    root = tmp_path_factory.mktemp(f"flux-{variant}")
    model = build_random_flux(variant, seed=7)
    folder = save_diffusers(model, root / "diffusers")
    reference = Runner(load_flux(ModelFiles("flux", folder), CPU, torch.float32)).run(REQUEST).latent
    return variant, model, root, reference


def test_bfl_names_round_trip_and_name_every_weight():
    model = build_random_flux("dev", layers=(2, 2))
    ours = model.transformer.state_dict()
    original = flux_to_original(ours)
    assert "double_blocks.1.img_attn.qkv.weight" in original and "single_blocks.1.linear1.weight" in original
    assert "guidance_in.in_layer.weight" in original and "final_layer.adaLN_modulation.1.weight" in original
    back = flux_to_diffusers(original)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    assert flux_config(back) == {k: v if not isinstance(v, list) else tuple(v)
                                 for k, v in model.transformer.config.items() if not k.startswith("_")}


def test_schnell_has_no_guidance_input():
    original = transformer_file_state(build_random_flux("schnell"))
    assert not any(k.startswith("guidance_in.") for k in original)
    assert flux_config(flux_to_diffusers(original))["guidance_embeds"] is False


def test_split_files_in_comfyui_folders_load_and_match(saved):
    variant, model, root, reference = saved
    files = save_split(model, root / "comfy")
    loaded = load_flux(files, CPU, torch.float32)
    assert loaded.variant == variant
    assert np.allclose(Runner(loaded).run(REQUEST).latent, reference, atol=1e-5)


def test_all_in_one_checkpoint_loads_and_matches(saved):
    variant, model, root, reference = saved
    path = save_all_in_one(model, root / f"flux1-{variant}-aio.safetensors")
    loaded = load_flux(ModelFiles("flux", path), CPU, torch.float32)
    assert np.allclose(Runner(loaded).run(REQUEST).latent, reference, atol=1e-5)


def test_bf16_all_in_one_loads(saved, tmp_path):
    variant, model, _, reference = saved
    path = save_all_in_one(model, tmp_path / "bf16.safetensors", dtype=torch.bfloat16)
    loaded = load_flux(ModelFiles("flux", path), CPU, torch.float32)
    assert np.abs(Runner(loaded).run(REQUEST).latent - reference).max() < 0.1  # bf16 weights, fp32 run


def test_transformer_file_without_encoders_says_what_to_add(saved):
    _, model, root, _ = saved
    files = save_split(model, root / "alone")
    with pytest.raises(ModelLoadError, match="clip_l|CLIP-L"):
        load_flux(ModelFiles("flux", files.transformer, vae=files.vae), CPU, torch.float32)
    with pytest.raises(ModelLoadError, match="ae.safetensors"):
        load_flux(ModelFiles("flux", files.transformer, files.text_encoders), CPU, torch.float32)


def test_a_file_of_another_model_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)}, str(path))
    with pytest.raises(ModelLoadError, match="not a Flux.1 transformer"):
        load_flux(ModelFiles("flux", path), CPU, torch.float32)
