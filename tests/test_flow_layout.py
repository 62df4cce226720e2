"""Finding a split flow model's parts where users keep them (ComfyUI's and Forge's folders), by what the files hold;
explicit files win; a missing part says which file goes where; and what the model card reports."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from studio.engine.models.errors import ModelLoadError
from studio.engine.models.flow import load as flow_load
from studio.engine.models.flow.load import find_model_files, load_flow_model
from studio.engine.models.flow.offload import MemoryPlan
from studio.engine.models.flow.testing_files import save_fp8, save_gguf


def write(path, names: dict[str, tuple[int, ...]], dtype=torch.float16):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: torch.zeros(s, dtype=dtype) for k, s in names.items()}, str(path))
    return path


FLUX = {"double_blocks.0.img_attn.qkv.weight": (6, 2), "single_blocks.0.linear1.weight": (6, 2),
        "img_in.weight": (2, 64), "final_layer.linear.weight": (64, 2), "guidance_in.in_layer.weight": (2, 2)}
SD3 = {"joint_blocks.0.x_block.attn.qkv.weight": (6, 2), "x_embedder.proj.weight": (2, 16, 2, 2)}
ZIMAGE = {"layers.0.adaLN_modulation.0.weight": (8, 2), "cap_embedder.1.weight": (2, 4), "x_embedder.weight": (2, 64)}


def clip(width: int = 768) -> dict:
    return {"text_model.encoder.layers.0.self_attn.q_proj.weight": (width, 1)}


T5 = {"encoder.block.0.layer.0.SelfAttention.q.weight": (4, 4), "shared.weight": (8, 4)}
QWEN3 = {"model.layers.0.self_attn.q_norm.weight": (4,), "model.layers.0.mlp.gate_proj.weight": (4, 4)}
VAE = {"decoder.conv_in.weight": (4, 16, 3, 3), "encoder.down.0.block.0.conv1.weight": (2, 2, 3, 3)}


def comfy(tmp_path, model: dict = FLUX, folder: str = "diffusion_models"):
    models = tmp_path / "ComfyUI" / "models"
    return models, write(models / folder / "flux1-dev.safetensors", model)


def test_comfyui_layout_found_by_content_not_name(tmp_path):
    models, model = comfy(tmp_path)
    clip_l = write(models / "text_encoders" / "clip_l.safetensors", clip())
    t5 = write(models / "clip" / "flux" / "my_big_encoder.safetensors", T5)  # old folder name, a sub-folder
    ae = write(models / "vae" / "ae.safetensors", VAE)
    write(models / "vae" / "sdxl_vae.safetensors", {**VAE, "decoder.conv_in.weight": (4, 4, 3, 3)})  # 4-channel
    files, det = find_model_files(model)
    assert (files.family, files.variant, det.kind) == ("flux", "dev", "diffusion_model")
    assert files.text_encoders == {"clip_l": clip_l, "t5xxl": t5} and files.vae == ae


def test_forge_layout_and_the_larger_of_two_t5_files(tmp_path):
    models = tmp_path / "webui" / "models"
    model = write(models / "Stable-diffusion" / "flux" / "flux1-schnell.safetensors",
                  {k: v for k, v in FLUX.items() if not k.startswith("guidance")})
    write(models / "text_encoder" / "clip_l.safetensors", clip())
    write(models / "text_encoder" / "t5xxl_fp8_e4m3fn.safetensors", T5, torch.float8_e4m3fn)
    fp16 = write(models / "text_encoder" / "t5xxl_fp16.safetensors", T5)
    ae = write(models / "VAE" / "ae.safetensors", VAE)
    files, _ = find_model_files(model)
    assert files.variant == "schnell" and files.text_encoders["t5xxl"] == fp16 and files.vae == ae


def test_explicit_files_win_and_are_checked(tmp_path):
    models, model = comfy(tmp_path)
    write(models / "text_encoders" / "clip_l.safetensors", clip())
    write(models / "text_encoders" / "t5xxl_fp16.safetensors", T5)
    write(models / "vae" / "ae.safetensors", VAE)
    mine = write(tmp_path / "elsewhere" / "t5-q8.safetensors", T5)
    my_vae = write(tmp_path / "elsewhere" / "flux_vae.safetensors", VAE)
    files, _ = find_model_files(model, text_encoders=[mine], vae=my_vae)
    assert files.text_encoders["t5xxl"] == mine and files.vae == my_vae
    with pytest.raises(ModelLoadError, match="flux_vae.safetensors is not a text encoder .*a VAE"):
        find_model_files(model, text_encoders=[my_vae])
    with pytest.raises(ModelLoadError, match="t5-q8.safetensors is not a VAE .*t5xxl text encoder"):
        find_model_files(model, vae=mine)
    with pytest.raises(ModelLoadError, match="two t5xxl text encoders given"):
        find_model_files(model, text_encoders=[mine, mine])
    with pytest.raises(ModelLoadError, match="text encoder file not found"):
        find_model_files(model, text_encoders=[tmp_path / "nope.safetensors"])


def test_missing_parts_say_which_file_goes_where(tmp_path):
    models, model = comfy(tmp_path)
    write(models / "text_encoders" / "clip_l.safetensors", clip())
    (models / "vae").mkdir()
    with pytest.raises(ModelLoadError) as err:
        find_model_files(model)
    message = str(err.value)
    assert message == (
        f"flux1-dev.safetensors needs its t5xxl text encoder, its VAE: put t5xxl_fp16.safetensors (or "
        f"t5xxl_fp8_e4m3fn.safetensors) in {models.resolve() / 'text_encoders'}; ae.safetensors in "
        f"{models.resolve() / 'vae'}, or give the file with --text-encoder PATH / --vae PATH (in the window: "
        "Text encoders / VAE… under the model)")


def test_a_lone_file_finds_parts_in_its_own_folder(tmp_path):
    model = write(tmp_path / "z" / "z_image_turbo_bf16.safetensors", ZIMAGE)
    qwen = write(tmp_path / "z" / "qwen_3_4b.safetensors", QWEN3)
    ae = write(tmp_path / "z" / "ae.safetensors", VAE)
    files, _ = find_model_files(model)
    assert files.family == "zimage" and files.text_encoders == {"qwen3": qwen} and files.vae == ae


def test_two_vaes_need_a_name_that_says_the_family(tmp_path):
    models, model = comfy(tmp_path, SD3)
    for name in ("clip_l", "clip_g", "t5xxl"):
        write(models / "text_encoders" / f"{name}.safetensors", clip(1280) if name == "clip_g" else
              clip() if name == "clip_l" else T5)
    write(models / "vae" / "ae.safetensors", VAE)
    sd3_vae = write(models / "vae" / "sd3.5_vae.safetensors", VAE)
    files, _ = find_model_files(model)
    assert files.family == "sd3" and files.vae == sd3_vae
    (models / "vae" / "sd3.5_vae.safetensors").rename(models / "vae" / "other.safetensors")
    with pytest.raises(ModelLoadError, match=r"several 16-channel VAEs could belong .*--vae PATH"):
        find_model_files(model)


def test_tiny_clips_are_told_apart_by_name_or_size(tmp_path):
    models, model = comfy(tmp_path, SD3)
    small = write(models / "text_encoders" / "a.safetensors", clip(32))
    large = write(models / "text_encoders" / "b.safetensors", clip(64))
    write(models / "text_encoders" / "t5.safetensors", T5)
    write(models / "vae" / "v.safetensors", VAE)
    assert find_model_files(model)[0].text_encoders["clip_l"] == small
    assert find_model_files(model)[0].text_encoders["clip_g"] == large
    files, _ = find_model_files(model, text_encoders=[large, small])  # given in that order, but names decide none
    assert (files.text_encoders["clip_l"], files.text_encoders["clip_g"]) == (large, small)


def test_all_in_one_needs_nothing_beside_and_a_pipeline_folder_is_whole(tmp_path):
    aio = {f"model.diffusion_model.{k}": v for k, v in FLUX.items()}
    aio.update({f"text_encoders.clip_l.transformer.{k}": v for k, v in clip().items()})
    aio.update({f"text_encoders.t5xxl.transformer.{k}": v for k, v in T5.items()})
    aio.update({f"vae.{k}": v for k, v in VAE.items()})
    path = write(tmp_path / "checkpoints" / "flux1-dev-fp8.safetensors", aio)
    files, det = find_model_files(path)
    assert det.kind == "checkpoint" and files.text_encoders == {} and files.vae is None
    pipe = tmp_path / "FLUX.1-dev"
    (pipe / "transformer").mkdir(parents=True)
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    (pipe / "transformer" / "config.json").write_text(json.dumps({"guidance_embeds": True}))
    files, det = find_model_files(pipe)
    assert (det.kind, files.transformer, files.variant, files.text_encoders) == ("pipeline", pipe, "dev", {})


def test_not_a_model_is_refused_with_what_to_do(tmp_path):
    t5 = write(tmp_path / "t5xxl_fp16.safetensors", T5)
    with pytest.raises(ModelLoadError, match="t5xxl_fp16.safetensors is a t5xxl text encoder, not a model: load the "
                                             "diffusion model and give this file with --text-encoder"):
        find_model_files(t5)


def test_load_flow_model_calls_the_family_loader_and_reports_precision(tmp_path, monkeypatch):
    models = tmp_path / "models"
    big = {**FLUX, "double_blocks.0.img_attn.qkv.weight": (96, 64)}  # more than 1024 numbers: quantised
    model = save_gguf({k: torch.randn(v) for k, v in big.items()}, (models / "unet").mkdir(parents=True) or
                      models / "unet" / "flux1-dev-Q8_0.gguf", family="flux")
    save_fp8({"encoder.block.0.layer.0.SelfAttention.q.weight": torch.randn(4, 4), "shared.weight": torch.randn(8, 4)},
             (models / "text_encoders").mkdir() or models / "text_encoders" / "t5xxl_fp8_e4m3fn.safetensors")
    write(models / "text_encoders" / "clip_l.safetensors", clip())
    write(models / "vae" / "ae.safetensors", VAE, torch.float32)
    seen = {}

    class Loaded:
        def place(self, mode, free=None):
            seen.update(offload=mode)
            return MemoryPlan("model", "the whole model does not fit, its largest part does")

    def fake_loader(files, device, dtype):
        seen.update(files=files, device=device, dtype=dtype)
        return Loaded()

    monkeypatch.setitem(flow_load.FLOW_LOADERS, "flux", f"{__name__}:_fake")
    monkeypatch.setitem(globals(), "_fake", fake_loader)
    got = load_flow_model(model, device="cpu", dtype="bf16", offload="model")
    assert seen["dtype"] == torch.bfloat16 and seen["offload"] == "model"
    assert seen["files"].text_encoders["t5xxl"].name == "t5xxl_fp8_e4m3fn.safetensors"
    assert got.load_report.lines() == (
        "transformer: GGUF Q8_0 -> bf16 (flux1-dev-Q8_0.gguf)", "clip_l: fp16 -> bf16 (clip_l.safetensors)",
        "t5xxl: fp8 e4m3fn -> bf16 (t5xxl_fp8_e4m3fn.safetensors)", "vae: fp32 -> bf16 (ae.safetensors)",
        "GPU memory: one part at a time on the GPU (model offload): the whole model does not fit, its largest part "
        "does")


def test_a_family_not_yet_in_the_studio_is_named(tmp_path, monkeypatch):
    models, model = comfy(tmp_path)
    write(models / "text_encoders" / "clip_l.safetensors", clip())
    write(models / "text_encoders" / "t5xxl_fp16.safetensors", T5)
    write(models / "vae" / "ae.safetensors", VAE)
    monkeypatch.setitem(flow_load.FLOW_LOADERS, "flux", "studio.engine.models.flow.no_such_module:load")
    with pytest.raises(ModelLoadError, match="flux1-dev is a Flux.1 model, which this version of the studio cannot"):
        load_flow_model(model)
