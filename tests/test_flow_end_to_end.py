"""A tiny random SD 3 saved the way users keep it (ComfyUI's split folders; its transformer also as fp8 and as GGUF),
listed by the model scan, loaded by path from the command line with its parts found beside it, and run."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("gguf")

from studio.cli import main  # noqa: E402
from studio.engine.models import registry  # noqa: E402
from studio.engine.models.flow.tensors import read_state_dict  # noqa: E402
from studio.engine.models.flow.testing_files import save_fp8, save_gguf  # noqa: E402


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from studio.engine.models.flow.testing_sd3 import build_random_sd3, save_split

    models = tmp_path_factory.mktemp("ComfyUI") / "models"
    saved = save_split(build_random_sd3(), models, name="sd3_tiny")
    state = read_state_dict(saved["transformer"])
    save_fp8(state, models / "diffusion_models" / "sd3_tiny_fp8_e4m3fn.safetensors")
    save_gguf(state, models / "unet" / "sd3_tiny-Q8_0.gguf", family="sd3")
    return models


def test_the_scan_lists_each_file_once_and_not_its_parts(comfy):
    entries, skipped = registry.scan_models([comfy / "diffusion_models", comfy / "unet", comfy / "text_encoders"])
    labels = sorted(e.label for e in entries if e.key.startswith("sd:"))
    assert labels == ["sd3_tiny (SD 3.x 3-medium)", "sd3_tiny-Q8_0 (SD 3.x 3-medium)",
                      "sd3_tiny_fp8_e4m3fn (SD 3.x 3-medium)"]
    assert skipped == []


@pytest.mark.parametrize("file", ["diffusion_models/sd3_tiny.safetensors",
                                  "diffusion_models/sd3_tiny_fp8_e4m3fn.safetensors", "unet/sd3_tiny-Q8_0.gguf"])
def test_generate_takes_the_path_and_finds_the_parts_beside_it(comfy, tmp_path, capsys, file):
    out = tmp_path / "out.png"
    code = main(["generate", "--model", str(comfy / file), "--prompt", "a red circle", "--steps", "2",
                 "--sampler", "euler", "--width", "64", "--height", "64", "--seed", "1", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert out.is_file()


def test_the_precision_report_names_each_file(comfy):
    from studio.engine.models.flow.load import load_flow_model

    model = load_flow_model(comfy / "unet" / "sd3_tiny-Q8_0.gguf")
    assert model.load_report.lines() == (
        "transformer: GGUF Q8_0 -> fp32 (sd3_tiny-Q8_0.gguf)", "clip_l: fp32 (clip_l.safetensors)",
        "clip_g: fp32 (clip_g.safetensors)", "t5xxl: fp32 (t5xxl_fp16.safetensors)", "vae: fp32 (sd3_vae.safetensors)")
