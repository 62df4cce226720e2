"""Which kind of file a flow-model file is, from names and shapes alone: every family and naming, all-in-one
checkpoints, encoders by role, VAEs, SD checkpoints left to the SD loader, and unknown files named."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from studio.engine.models.errors import ModelLoadError
from studio.engine.models.flow.detect import Detected, detect_path, detect_shapes
from studio.engine.models.flow.testing_files import save_gguf


def flux(p: str = "", *, guidance: bool = True, img_in: int = 64) -> dict:
    out = {p + "double_blocks.0.img_attn.qkv.weight": (9216, 3072), p + "single_blocks.0.linear1.weight": (21504, 3072),
           p + "img_in.weight": (3072, img_in), p + "final_layer.linear.weight": (64, 3072),
           p + "txt_in.weight": (3072, 4096)}
    if guidance:
        out[p + "guidance_in.in_layer.weight"] = (3072, 256)
    return out


def flux_diffusers(*, guidance: bool = True, x_in: int = 64) -> dict:
    out = {"transformer_blocks.0.attn.add_q_proj.weight": (3072, 3072),
           "single_transformer_blocks.0.proj_mlp.weight": (12288, 3072), "x_embedder.weight": (3072, x_in),
           "proj_out.weight": (64, 3072)}
    if guidance:
        out["time_text_embed.guidance_embedder.linear_1.weight"] = (3072, 256)
    return out


def sd3(p: str = "", *, depth: int = 24, attn2: bool = False) -> dict:
    out = {p + "pos_embed": (1, 36864, 1536), p + "x_embedder.proj.weight": (1536, 16, 2, 2)}
    for i in range(depth):
        out[f"{p}joint_blocks.{i}.x_block.attn.qkv.weight"] = (4608, 1536)
    if attn2:
        out[p + "joint_blocks.0.x_block.attn2.qkv.weight"] = (4608, 1536)
    return out


def sd3_diffusers(depth: int = 2) -> dict:
    out = {"pos_embed.proj.weight": (1536, 16, 2, 2), "context_embedder.weight": (1536, 4096)}
    for i in range(depth):
        out[f"transformer_blocks.{i}.attn.add_q_proj.weight"] = (1536, 1536)
    return out


def zimage(p: str = "", *, diffusers: bool = False) -> dict:
    out = {p + "layers.0.adaLN_modulation.0.weight": (15360, 256), p + "cap_embedder.1.weight": (3840, 2560)}
    if diffusers:
        out.update({p + "all_x_embedder.2-1.weight": (3840, 64), p + "layers.0.attention.to_q.weight": (3840, 3840)})
    else:
        out.update({p + "x_embedder.weight": (3840, 64), p + "layers.0.attention.qkv.weight": (11520, 3840)})
    return out


def clip(p: str = "", width: int = 768) -> dict:
    return {p + "text_model.encoder.layers.0.self_attn.q_proj.weight": (width, width),
            p + "text_model.embeddings.token_embedding.weight": (49408, width)}


def t5(p: str = "") -> dict:
    return {p + "encoder.block.0.layer.0.SelfAttention.q.weight": (4096, 4096), p + "shared.weight": (32128, 4096)}


def qwen3(p: str = "model.") -> dict:
    return {p + "layers.0.self_attn.q_norm.weight": (128,), p + "layers.0.mlp.gate_proj.weight": (9728, 2560),
            p + "embed_tokens.weight": (151936, 2560)}


def vae(p: str = "", channels: int = 16, diffusers: bool = False) -> dict:
    down = "encoder.down_blocks.0.resnets.0.conv1.weight" if diffusers else "encoder.down.0.block.0.conv1.weight"
    return {p + "decoder.conv_in.weight": (512, channels, 3, 3), p + down: (128, 128, 3, 3)}


@pytest.mark.parametrize("shapes,family,variant,naming,prefix", [
    (flux(), "flux", "dev", "original", ""),
    (flux(guidance=False), "flux", "schnell", "original", ""),
    (flux(img_in=384), "flux", "fill", "original", ""),
    (flux(img_in=128), "flux", "control", "original", ""),
    (flux("model.diffusion_model."), "flux", "dev", "original", "model.diffusion_model."),
    (flux_diffusers(), "flux", "dev", "diffusers", ""),
    (flux_diffusers(guidance=False), "flux", "schnell", "diffusers", ""),
    (flux_diffusers(x_in=384), "flux", "fill", "diffusers", ""),
    (sd3(), "sd3", "3-medium", "original", ""),
    (sd3(attn2=True), "sd3", "3.5-medium", "original", ""),
    (sd3("model.diffusion_model.", depth=38), "sd3", "3.5-large", "original", "model.diffusion_model."),
    (sd3_diffusers(), "sd3", "3-medium", "diffusers", ""),
    (zimage(), "zimage", "", "original", ""),
    (zimage("model.diffusion_model."), "zimage", "", "original", "model.diffusion_model."),
    (zimage(diffusers=True), "zimage", "", "diffusers", ""),
])
def test_diffusion_models_of_every_family_and_naming(shapes, family, variant, naming, prefix):
    assert detect_shapes(shapes) == Detected("diffusion_model", family, variant, prefix=prefix, naming=naming)


@pytest.mark.parametrize("shapes,role", [
    (clip(), "clip_l"), (clip(width=1280), "clip_g"), (clip(width=32), "clip"), (t5(), "t5xxl"),
    (qwen3(), "qwen3"), (qwen3(""), "qwen3"),
])
def test_text_encoders_by_role(shapes, role):
    assert detect_shapes(shapes) == Detected("text_encoder", role=role)


@pytest.mark.parametrize("shapes,prefix", [(vae(), ""), (vae(diffusers=True), ""), (vae("vae."), "vae."),
                                           (vae("first_stage_model."), "first_stage_model.")])
def test_sixteen_channel_vaes(shapes, prefix):
    assert detect_shapes(shapes) == Detected("vae", prefix=prefix)


def test_all_in_one_checkpoints_name_their_parts():
    sd35 = {**sd3("model.diffusion_model.", depth=38), **clip("text_encoders.clip_l.transformer."),
            **clip("text_encoders.clip_g.transformer.", 1280), **t5("text_encoders.t5xxl.transformer."),
            **vae("first_stage_model.")}
    got = detect_shapes(sd35, "sd3.5_large.safetensors")
    assert (got.kind, got.family, got.variant, got.prefix) == ("checkpoint", "sd3", "3.5-large",
                                                                 "model.diffusion_model.")
    assert dict(got.parts) == {"clip_g": "text_encoders.clip_g.transformer.",
                               "clip_l": "text_encoders.clip_l.transformer.",
                               "t5xxl": "text_encoders.t5xxl.transformer.", "vae": "first_stage_model."}
    flux_aio = {**flux("model.diffusion_model.", guidance=False), **clip("text_encoders.clip_l.transformer.", 32),
                **t5("text_encoders.t5xxl.transformer."), **vae("vae.")}
    got = detect_shapes(flux_aio)
    assert (got.kind, got.family, got.variant) == ("checkpoint", "flux", "schnell")
    assert got.part_prefix("clip_l") == "text_encoders.clip_l.transformer."  # a tiny CLIP: its slot says which
    assert got.part_prefix("vae") == "vae." and got.part_prefix("clip_g") is None
    z = detect_shapes({**zimage("model.diffusion_model."), **qwen3("text_encoders.qwen3_4b.transformer.model."),
                       **vae("vae.")})
    assert dict(z.parts) == {"qwen3": "text_encoders.qwen3_4b.transformer.", "vae": "vae."}


def test_sd_checkpoints_go_to_the_sd_loader():
    sd1 = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
           "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight": (768, 768)}
    assert detect_shapes(sd1).kind == "sd"


@pytest.mark.parametrize("shapes,message", [
    (vae(channels=4), "x.safetensors is a Stable Diffusion 1.x/2.x/XL VAE"),
    ({"single_stream_modulation.lin.weight": (1, 1), "double_blocks.0.x": (1,)}, "x.safetensors is a Flux.2 model"),
    ({"layers.0.adaLN_modulation.1.weight": (1, 1), "cap_embedder.0.weight": (1,)}, "Lumina Image 2.0"),
    ({"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": (4, 3072)}, "x.safetensors looks like a LoRA"),
    ({"some.weight": (3, 3)}, r"x.safetensors is no model the studio knows.*'some.weight'"),
    ({}, "no tensors at all"),
    ({**clip("text_encoders.clip_l.transformer."), **t5("text_encoders.t5xxl.transformer.")},
     "x.safetensors holds only clip_l, t5xxl, no diffusion model"),
])
def test_what_is_not_a_usable_flow_file_is_named(shapes, message):
    with pytest.raises(ModelLoadError, match=message):
        detect_shapes(shapes, "x.safetensors")


def small(shapes: dict) -> dict[str, torch.Tensor]:
    """Tensors with the names of ``shapes`` (and their number of dimensions) but a few numbers each."""
    return {k: torch.zeros((2,) * len(v)) for k, v in shapes.items()}


def test_detect_path_reads_headers_of_safetensors_and_gguf(tmp_path):
    save_file({"text_model.encoder.layers.0.self_attn.q_proj.weight": torch.zeros(1280, 2)},
              str(tmp_path / "clip_g.safetensors"))
    assert detect_path(tmp_path / "clip_g.safetensors").role == "clip_g"
    save_gguf(small(flux(guidance=False)), tmp_path / "flux1-schnell-Q8_0.gguf", family="flux")
    got = detect_path(tmp_path / "flux1-schnell-Q8_0.gguf")
    assert (got.kind, got.family) == ("diffusion_model", "flux")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelLoadError, match="notes.txt is not a model file"):
        detect_path(tmp_path / "notes.txt")


def test_diffusers_folders(tmp_path):
    pipe = tmp_path / "FLUX.1-schnell"
    (pipe / "transformer").mkdir(parents=True)
    (pipe / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    (pipe / "transformer" / "config.json").write_text(json.dumps({"in_channels": 64, "guidance_embeds": False}))
    assert detect_path(pipe) == Detected("pipeline", "flux", "schnell", naming="diffusers")
    lone = tmp_path / "sd35-transformer"
    lone.mkdir()
    (lone / "config.json").write_text(json.dumps({"_class_name": "SD3Transformer2DModel", "num_layers": 38}))
    assert detect_path(lone) == Detected("diffusion_model", "sd3", "3.5-large", naming="diffusers")
    sd = tmp_path / "sd15"
    sd.mkdir()
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    assert detect_path(sd).kind == "sd"
    other = tmp_path / "wan"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ModelLoadError, match="wan is a diffusers WanPipeline folder, which the studio does not run"):
        detect_path(other)


def test_an_encoder_folder_is_detected_from_its_weights(tmp_path):
    folder = tmp_path / "text_encoder_2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["T5EncoderModel"]}))
    save_file({"encoder.block.0.layer.0.SelfAttention.q.weight": torch.zeros(2, 2)},
              str(folder / "model-00001-of-00001.safetensors"))
    assert detect_path(folder) == Detected("text_encoder", role="t5xxl")
