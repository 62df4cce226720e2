"""Flow models in the model list and on the command line: listed with their family, their parts left out, a bad file
reported without hiding the others; `--model PATH`, `sd:PATH`, `--text-encoder`, `--vae`, `--guidance`."""

from __future__ import annotations

import json

import pytest
import torch

from studio.cli import _flag_changes, build_parser, main
from studio.engine.models import registry
from studio.engine.models.errors import ModelLoadError
from studio.engine.models.flow import FLOW_LOADERS
from studio.engine.models.flow.testing_files import save_gguf
from tests.test_flow_layout import FLUX, QWEN3, SD3, T5, VAE, ZIMAGE, clip, write


def comfy_install(tmp_path):
    models = tmp_path / "ComfyUI" / "models"
    flux = write(models / "diffusion_models" / "flux1-dev.safetensors", FLUX)
    save_gguf({k: torch.zeros(v) for k, v in ZIMAGE.items()}, models / "diffusion_models" / "z_image-Q8_0.gguf",
              family="zimage")
    write(models / "diffusion_models" / "t5xxl_fp16.safetensors", T5)  # a part in the wrong folder: not listed
    write(models / "checkpoints" / "sd3.5_medium.safetensors",
          {**{f"model.diffusion_model.{k}": v for k, v in SD3.items()},
           **{f"text_encoders.clip_l.transformer.{k}": v for k, v in clip().items()}})
    write(models / "text_encoders" / "clip_l.safetensors", clip())
    write(models / "text_encoders" / "t5xxl_fp16.safetensors", T5)
    write(models / "text_encoders" / "qwen_3_4b.safetensors", QWEN3)
    write(models / "vae" / "ae.safetensors", VAE)
    (models / "diffusion_models" / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    return models, flux


def test_flow_models_are_listed_with_their_family_and_parts_are_not(tmp_path):
    models, flux = comfy_install(tmp_path)
    entries, skipped = registry.scan_models([models / "diffusion_models", models / "checkpoints"])
    listed = {e.label: e for e in entries if e.key.startswith("sd:")}
    assert set(listed) == {"flux1-dev (Flux.1 dev)", "z_image-Q8_0 (Z-Image)", "sd3.5_medium (SD 3.x 3-medium)"}
    assert listed["flux1-dev (Flux.1 dev)"].key == f"sd:{flux}" and listed["flux1-dev (Flux.1 dev)"].family == "flux"
    assert len(skipped) == 1 and "broken.safetensors" in skipped[0]  # reported; the others still listed


def test_a_diffusers_flow_pipeline_is_listed(tmp_path):
    pipe = tmp_path / "models" / "FLUX.1-schnell"
    (pipe / "transformer").mkdir(parents=True)
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    (pipe / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": False}))
    entries, _ = registry.scan_models([tmp_path / "models"])
    assert [(e.label, e.family) for e in entries if e.key.startswith("sd:")] == [
        ("FLUX.1-schnell (Flux.1 schnell)", "flux")]


def test_model_keys_for_paths_stay_sd_keys(tmp_path):
    path = write(tmp_path / "flux.safetensors", FLUX)
    assert registry.model_key(str(path)) == f"sd:{path}"
    assert registry.model_key(f"sd:{path}") == f"sd:{path}"
    assert registry.model_key("toy") == "toy"


@pytest.fixture
def recording_loader(monkeypatch):
    seen = {}

    def loader(files, device, dtype):
        seen["files"] = files
        raise ModelLoadError("loaded as far as the family loader")

    monkeypatch.setitem(globals(), "_recording", loader)
    for family in FLOW_LOADERS:
        monkeypatch.setitem(FLOW_LOADERS, family, f"{__name__}:_recording")
    return seen


def test_load_model_sends_flow_files_to_the_flow_loader_with_the_given_parts(tmp_path, recording_loader):
    models, flux = comfy_install(tmp_path)
    mine = write(tmp_path / "mine" / "t5.safetensors", T5)
    with pytest.raises(ModelLoadError, match="as far as the family loader"):
        registry.load_model(f"sd:{flux}", text_encoders=[mine])
    files = recording_loader["files"]
    assert files.family == "flux" and files.text_encoders["t5xxl"] == mine
    assert files.vae == models / "vae" / "ae.safetensors"


def test_cli_takes_a_path_and_the_part_flags(tmp_path, recording_loader, capsys):
    models, flux = comfy_install(tmp_path)
    mine = write(tmp_path / "mine" / "flux_ae.safetensors", VAE)
    code = main(["generate", "--model", str(flux), "--vae", str(mine), "--prompt", "x", "--quiet"])
    assert code == 2 and capsys.readouterr().err == "error: loaded as far as the family loader\n"
    assert recording_loader["files"].vae == mine


def test_cli_errors_are_one_line(tmp_path, capsys):
    models, flux = comfy_install(tmp_path)
    (models / "vae" / "ae.safetensors").unlink()
    assert main(["generate", "--model", str(flux), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: flux1-dev.safetensors needs its VAE: put ae.safetensors in")
    assert main(["generate", "--model", str(models / "text_encoders" / "clip_l.safetensors"), "--prompt", "x"]) == 2
    assert "clip_l.safetensors is a clip_l text encoder, not a model" in capsys.readouterr().err
    assert main(["generate", "--model", str(flux), "--text-encoder", str(models / "vae"), "--prompt", "x"]) == 2
    assert capsys.readouterr().err.startswith("error: vae is not a diffusers SD 3.x / Flux.1 / Z-Image folder")


def test_guidance_flag_sets_distilled_cfg():
    args = build_parser().parse_args(["generate", "--guidance", "2.5", "--text-encoder", "a", "--text-encoder", "b"])
    assert _flag_changes(args) == {"distilled_cfg": 2.5}
    assert [str(p) for p in args.text_encoder] == ["a", "b"]
