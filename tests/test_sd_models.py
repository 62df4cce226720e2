"""Stable Diffusion 1.x / 2.x / XL through the studio's engine, on tiny random-weight models built here.

Each family is saved as a diffusers folder and as an original-layout single file,
loaded offline through the studio, and run by the studio's Runner. Parity tests
run diffusers' own pipeline on the same networks, noise and schedule.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.models.registry import ModelLoadError, available_models, load_model  # noqa: E402
from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.testing import (  # noqa: E402
    build_random,
    save_configs,
    save_diffusers,
    save_single_file,
)
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

FAMILIES = ("sd1", "sd2", "sdxl")
SIZE = 64  # pixels; latents are 8x8


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """family -> (random model, diffusers folder, single file, config folder for the single file)."""
    out = {}
    for family in FAMILIES:
        root = tmp_path_factory.mktemp(family)
        model = build_random(family, seed=FAMILIES.index(family))
        out[family] = (model, save_diffusers(model, root / "diffusers"),
                       save_single_file(model, root / f"tiny-{family}.safetensors"), save_configs(model, root / "cfg"))
    return out


def request(**kw) -> GenerationRequest:
    base = dict(prompt="a red apple on a table", negative_prompt="blurry", sampler="euler", steps=4, cfg_scale=5.0,
                seed=7, width=SIZE, height=SIZE)
    return GenerationRequest(**{**base, **kw})


@pytest.mark.parametrize("family", FAMILIES)
def test_both_layouts_load_the_same_weights_and_generate_alike(saved, family):
    built, folder, single, cfg = saved[family]
    from_folder = load_sd_model(folder)
    from_file = load_sd_model(single, config_dir=cfg)
    for m in (from_folder, from_file):
        assert m.info.family == family and m.info.latent_scale == 8
        pairs = [(m.unet, built.unet), (m.vae, built.vae), *zip(m.prompts.encoders, built.text_encoders, strict=True)]
        for mine, ref in pairs:
            a, b = mine.state_dict(), ref.state_dict()
            assert all(torch.equal(a[k], b[k]) for k in b), f"{family}: weights differ after loading"
    ra, rb = Runner(from_folder).run(request()), Runner(from_file).run(request())
    assert ra.image.shape == (SIZE, SIZE, 3) and ra.image.dtype == np.uint8
    # Same weights, but the two loaders may pick different attention kernels: latents agree to ~1e-5.
    np.testing.assert_allclose(ra.latent, rb.latent, atol=1e-4)
    assert np.abs(ra.image.astype(int) - rb.image).max() <= 1
    assert from_folder.prediction == from_file.prediction == ("v_prediction" if family == "sd2" else "epsilon")


def test_sd2_512_base_files_predict_epsilon(saved, tmp_path):
    _, _, single, cfg = saved["sd2"]
    base = tmp_path / "v2-1_512-ema-pruned.safetensors"
    base.symlink_to(single)
    model = load_sd_model(base, config_dir=cfg)
    assert model.prediction == "epsilon" and model.info.default_size == (512, 512)


def _diffusers_pipeline(family, built, tokenizers):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    # The model's own scheduler config, steps_offset=1 included: the engine honours it too.
    cfg = {k: v for k, v in built.scheduler_config.items() if not k.startswith("_")}
    sched = EulerDiscreteScheduler(**cfg)
    if family == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=built.vae, text_encoder=built.text_encoders[0],
                                     text_encoder_2=built.text_encoders[1], tokenizer=tokenizers[0],
                                     tokenizer_2=tokenizers[1], unet=built.unet, scheduler=sched,
                                     force_zeros_for_empty_prompt=True, add_watermarker=False)
    else:
        pipe = StableDiffusionPipeline(vae=built.vae, text_encoder=built.text_encoders[0], tokenizer=tokenizers[0],
                                       unet=built.unet, scheduler=sched, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.scheduler = EulerDiscreteScheduler(**cfg)
    return pipe


@pytest.mark.parametrize("family", FAMILIES)
def test_parity_with_the_diffusers_pipeline(saved, family):
    """Same networks, seed, schedule (Euler, 4 leading steps) and noise: the studio matches diffusers."""
    built, _, single, cfg = saved[family]
    model = load_sd_model(single, config_dir=cfg)
    negative = "" if family == "sdxl" else "blurry"  # SDXL: an empty negative means zero conditioning in both
    req = request(negative_prompt=negative, steps=4)
    result = Runner(model).run(req)

    from studio.engine.schedules import sampling_sigmas

    assert model.steps_offset == 1
    sigma0 = float(sampling_sigmas(model.schedule, req.steps, req.spacing, model.steps_offset)[0])
    noise = torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=torch.Generator("cpu").manual_seed(req.seed))
    pipe = _diffusers_pipeline(family, built, model.prompts.tokenizers)
    pipe.set_progress_bar_config(disable=True)
    # diffusers scales given latents by init_noise_sigma = sqrt(sigma0^2 + 1); undo that so x_T = noise * sigma0.
    out = pipe(req.prompt, negative_prompt=negative or None, num_inference_steps=req.steps,
               guidance_scale=req.cfg_scale, height=SIZE, width=SIZE, output_type="latent",
               latents=noise * sigma0 / (sigma0**2 + 1) ** 0.5)
    ref = out.images[0].float().numpy()
    err = np.abs(result.latent - ref).max() / np.abs(ref).max()
    print(f"{family}: studio vs diffusers, max relative latent error {err:.2e}")
    assert err < 1e-4, f"{family}: relative latent error {err:.2e}"
    with torch.no_grad():
        decoded = pipe.vae.decode(out.images / pipe.vae.config.scaling_factor).sample
    ref_image = pipe.image_processor.postprocess(decoded, output_type="np")[0]
    assert np.abs(result.image.astype(float) - ref_image * 255).max() <= 1.0


def test_guidance_branching_img2img_and_inpainting_work_on_sd(saved):
    _, _, single, cfg = saved["sd1"]
    runner = Runner(load_sd_model(single, config_dir=cfg))
    full = runner.run(request(sampler="dpmpp_2m", steps=5, guidance_rescale=0.5))
    branched = runner.run(request(sampler="dpmpp_2m", steps=5, guidance_rescale=0.5), branch_from=(full.run_id, 2))
    np.testing.assert_array_equal(full.image, branched.image)

    init = np.zeros((SIZE, SIZE, 3), np.uint8)
    init[:, : SIZE // 2] = (200, 30, 30)
    img2img = runner.run(request(init_image=init, strength=0.5))
    assert img2img.steps_run == 2
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[16:48, 16:48] = 1
    inpainted = runner.run(request(init_image=init, mask=mask, strength=1.0, sampler="euler_a"))
    np.testing.assert_array_equal(inpainted.image[:8], init[:8])  # outside the mask the image is kept


def test_previews_are_latent_projections_and_only_the_final_image_is_decoded(saved):
    _, folder, _, _ = saved["sdxl"]
    model = load_sd_model(folder)
    decodes = []
    original = model.vae.decode
    model.vae.decode = lambda *a, **k: decodes.append(1) or original(*a, **k)
    events = []
    Runner(model).run(request(steps=3), on_step=events.append)
    assert len(events) == 3 and len(decodes) == 1
    assert events[0].preview.shape == (SIZE // 8, SIZE // 8, 3) and events[0].preview.dtype == np.uint8


def test_long_prompts_are_chunked_and_the_negative_padded_to_match(saved):
    _, folder, _, _ = saved["sd1"]
    model = load_sd_model(folder)
    long_prompt = ", ".join(["a red apple on a wooden table"] * 15)  # ~100 tokens
    cond, uncond = model.encode_prompt(long_prompt, "blurry", SIZE, SIZE)
    assert cond["context"].shape[1] == 154 and uncond["context"].shape == cond["context"].shape
    short, _ = model.encode_prompt("a red apple", "", SIZE, SIZE)
    assert short["context"].shape[1] == 77
    Runner(model).run(request(prompt=long_prompt, steps=2))


def test_the_shipped_clip_tokenizer_gives_clip_token_ids(saved):
    tokenizers = load_sd_model(saved["sdxl"][1]).prompts.tokenizers
    assert tokenizers[0]("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizers[0].pad_token_id == 49407 and tokenizers[1].pad_token_id == 0  # SDXL's second pads with "!"


def test_sdxl_size_conditioning_and_pooled_embeds(saved):
    _, folder, _, _ = saved["sdxl"]
    model = load_sd_model(folder)
    cond, uncond = model.encode_prompt("a cat", "", 96, 64)
    assert cond["time_ids"].tolist() == [[64, 96, 0, 0, 64, 96]]
    assert cond["pooled"].shape == (1, 32) and cond["context"].shape == (1, 77, 64)
    assert not uncond["context"].any() and not uncond["pooled"].any()  # empty negative -> zeros (SDXL base)


def test_registry_lists_and_loads_discovered_checkpoints(saved, tmp_path):
    _, folder, single, _ = saved["sd1"]
    entries = [e for e in available_models(sd_dirs=[single.parent]) if e.key.startswith("sd:")]
    found = {e.family: e for e in entries}
    assert "sd1" in found and "SD 1.x" in found["sd1"].label
    assert available_models()[0].key in ("embedded", "toy")  # built-ins stay first
    model = load_model(f"sd:{folder}")
    assert model.info.family == "sd1"


def test_folders_from_the_environment_are_searched(saved, monkeypatch):
    from studio.engine.models.sd.discovery import ENV_DIRS, discover

    monkeypatch.setenv(ENV_DIRS, str(saved["sd2"][1].parent))
    found = discover(include_defaults=False)
    assert {(m.name, m.family, m.layout) for m in found} == {
        ("diffusers", "sd2", "diffusers"), ("tiny-sd2", "sd2", "single_file")}


def test_discovery_finds_a1111_comfy_and_hub_cache_layouts(saved, tmp_path):
    from studio.engine.models.sd.discovery import discover

    for family in FAMILIES:
        _, folder, single, _ = saved[family]
        a1111 = tmp_path / "webui" / "models" / "Stable-diffusion" / "sub"
        a1111.mkdir(parents=True, exist_ok=True)
        (a1111 / single.name).symlink_to(single)
    snap = tmp_path / "hub" / "models--someone--tiny-xl" / "snapshots" / "abc123"
    snap.parent.mkdir(parents=True)
    snap.symlink_to(saved["sdxl"][1], target_is_directory=True)
    (tmp_path / "webui" / "models" / "Stable-diffusion" / "notes.safetensors").write_bytes(b"\0" * 16)  # not a model
    found = discover([tmp_path / "webui" / "models" / "Stable-diffusion", tmp_path / "hub"], include_defaults=False)
    assert {(m.name, m.family) for m in found} == {
        ("tiny-sd1", "sd1"), ("tiny-sd2", "sd2"), ("tiny-sdxl", "sdxl"), ("someone/tiny-xl", "sdxl")}


def test_a_sidecar_yaml_sets_v_prediction(saved, tmp_path):
    _, _, single, cfg = saved["sd1"]
    copy = tmp_path / "v-model.safetensors"
    copy.write_bytes(single.read_bytes())
    copy.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert load_sd_model(copy, config_dir=cfg).prediction == "v_prediction"


def test_nan_vae_decode_is_retried_in_fp32(saved):
    _, folder, _, _ = saved["sd1"]
    model = load_sd_model(folder)
    model.vae.to(torch.bfloat16)
    model.codec.dtype = torch.bfloat16
    original = model.vae.decode

    def flaky(z, **kw):
        out = original(z, **kw)
        return (out[0] * float("nan"),) if z.dtype == torch.bfloat16 else out

    model.vae.decode = flaky
    image = model.decode(torch.zeros(1, 4, 8, 8))
    assert image.shape == (SIZE, SIZE, 3) and model.codec.dtype == torch.float32


# -- files that must be refused, with a message naming the file and the problem -------------------------------


class _Payload:
    """Unpickling this creates a file: the proof that a payload ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_malicious_ckpt_is_refused_and_its_payload_never_runs(saved, tmp_path):
    built, _, single, cfg = saved["sd1"]
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    from safetensors.torch import load_file

    torch.save({"state_dict": load_file(str(single)), "callback": _Payload(marker)}, evil)
    with pytest.raises(ModelLoadError, match=r"evil\.ckpt was refused"):
        load_sd_model(evil, config_dir=cfg)
    assert not marker.exists()


def test_a_ckpt_holding_only_tensors_loads(saved, tmp_path):
    _, _, single, cfg = saved["sd2"]
    from safetensors.torch import load_file

    ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": load_file(str(single)), "global_step": 1000}, ckpt)
    assert load_sd_model(ckpt, config_dir=cfg).info.family == "sd2"


def test_truncated_corrupt_and_foreign_files_get_clear_errors(saved, tmp_path):
    _, _, single, cfg = saved["sd1"]
    data = single.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"cut\.safetensors is truncated"):
        load_sd_model(cut, config_dir=cfg)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(ModelLoadError, match=r"junk\.safetensors has a corrupt safetensors header"):
        load_sd_model(junk)
    from safetensors.torch import save_file

    lora = tmp_path / "style-lora.safetensors"
    save_file({"lora_unet_down_blocks_0.lora_up.weight": torch.zeros(2, 2)}, str(lora))
    with pytest.raises(ModelLoadError, match="LoRA"):
        load_sd_model(lora)
    odd = tmp_path / "odd.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 8, 3, 3)}, str(odd))
    with pytest.raises(ModelLoadError, match="InstructPix2Pix model with 8 input channels"):
        load_sd_model(odd)
    from safetensors.torch import load_file

    partial = tmp_path / "partial.safetensors"
    weights = load_file(str(single))
    save_file({k: v for k, v in weights.items() if "output_blocks" not in k}, str(partial))
    with pytest.raises(ModelLoadError, match=r"partial\.safetensors: .*(UNET|lacks|missing)"):
        load_sd_model(partial, config_dir=cfg)
    with pytest.raises(ModelLoadError, match="no model at"):
        load_model(f"sd:{tmp_path / 'missing.safetensors'}")


def test_without_the_sd_extra_the_message_says_what_to_install(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes "import diffusers" fail
    with pytest.raises(ModelLoadError, match=r"pip install 'diffusion-studio\[sd\]'"):
        load_model(f"sd:{saved['sd1'][1]}")


def test_loading_never_reaches_a_model_hub(saved, monkeypatch):
    import socket

    def refuse(*a, **k):
        raise AssertionError("the SD loader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    _, folder, single, cfg = saved["sd2"]
    load_sd_model(folder)
    load_sd_model(single, config_dir=cfg)
    # Without config_dir the shipped SD 2.x configs describe the real architecture, which tiny weights don't fit.
    with pytest.raises(ModelLoadError, match=r"tiny-sd2\.safetensors: its UNET weights do not fit the sd2 layout"):
        load_sd_model(single)


@pytest.mark.parametrize("family, unet, text", [
    ("sd1", 859_520_964, [123_060_480]), ("sd2", 865_910_724, [340_387_840]),
    ("sdxl", 2_567_463_684, [123_060_480, 694_659_840])])
def test_shipped_configs_describe_the_real_architectures(family, unet, text):
    """The config skeletons in resources/ build networks with the published models' parameter counts."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from studio.engine.models.sd.load import CONFIGS

    root = CONFIGS / family
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with torch.device("meta"):
        assert count(UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet"))) == unet
        assert count(AutoencoderKL.from_config(AutoencoderKL.load_config(root / "vae"))) == 83_653_863
        encoders = [CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder"))]
        if family == "sdxl":
            encoders.append(CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(root / "text_encoder_2")))
    assert [count(e) for e in encoders] == text


def test_taesd_beside_the_checkpoint_gives_full_size_previews(saved, tmp_path):
    from diffusers import AutoencoderTiny

    _, _, single, cfg = saved["sd1"]
    copy = tmp_path / "with-taesd.safetensors"
    copy.symlink_to(single)
    AutoencoderTiny(encoder_block_out_channels=(8,) * 4, decoder_block_out_channels=(8,) * 4,
                    num_encoder_blocks=(1,) * 4, num_decoder_blocks=(1,) * 4).save_pretrained(str(tmp_path / "taesd"))
    events = []
    Runner(load_sd_model(copy, config_dir=cfg)).run(request(steps=2), on_step=events.append)
    assert events[0].preview.shape == (SIZE, SIZE, 3)
    plain = load_sd_model(copy, config_dir=cfg, tiny_decoder=False)
    assert plain.preview(torch.zeros(1, 4, 8, 8)).shape == (8, 8, 3)


def test_emphasis_weights_tokens_and_keeps_each_chunks_mean(saved):
    _, folder, _, _ = saved["sd1"]
    model = load_sd_model(folder)
    tokenizer = model.prompts.tokenizers[0]
    [(plain_ids, plain_w)] = model.prompts.token_chunks("a red apple", tokenizer)
    [(ids, weights)] = model.prompts.token_chunks("a (red:1.5) [apple]", tokenizer)
    assert ids == plain_ids and set(plain_w) == {1.0}
    assert weights[1:4] == [1.0, 1.5, pytest.approx(1 / 1.1)] and weights[4:] == [1.0] * 73
    plain, _ = model.encode_prompt("a red apple", "", SIZE, SIZE)
    weighted, _ = model.encode_prompt("a (red:1.5) [apple]", "", SIZE, SIZE)
    assert not torch.allclose(plain["context"], weighted["context"])
    assert torch.allclose(plain["context"].mean(), weighted["context"].mean(), atol=1e-6)


def test_break_and_long_lists_split_chunks_where_users_expect(saved):
    _, folder, _, _ = saved["sd1"]
    model = load_sd_model(folder)
    tokenizer = model.prompts.tokenizers[0]
    assert len(model.prompts.token_chunks("a cat BREAK a dog", tokenizer)) == 2
    cond, uncond = model.encode_prompt("a cat BREAK a dog", "", SIZE, SIZE)
    assert cond["context"].shape[1] == 154 and uncond["context"].shape == cond["context"].shape
    # 30 four-token phrases ("big red apple,"): the first chunk ends after a comma, not inside a phrase
    rows = model.prompts.token_chunks(", ".join(["big red apple"] * 30), tokenizer)
    comma = tokenizer(",", add_special_tokens=False).input_ids[-1]
    first = [t for t in rows[0][0][1:] if t not in (tokenizer.eos_token_id, tokenizer.pad_token_id)]
    assert len(rows) == 2 and first[-1] == comma and len(first) < 75


def test_clip_skip_reads_an_earlier_layer_through_the_final_norm(saved):
    _, folder, _, _ = saved["sd1"]
    model = load_sd_model(folder)
    assert model.info.clip_skip
    one, _ = model.encode_prompt("a red apple", "", SIZE, SIZE)
    two, _ = model.encode_prompt("a red apple", "", SIZE, SIZE, clip_skip=2)
    encoder = model.prompts.encoders[0]
    ids = torch.tensor([model.prompts.token_chunks("a red apple", model.prompts.tokenizers[0])[0][0]])
    with torch.no_grad():
        out = encoder(ids, output_hidden_states=True)
        expected = getattr(encoder, "text_model", encoder).final_layer_norm(out.hidden_states[-2])
    assert torch.allclose(two["context"], expected.float(), atol=1e-6)
    assert not torch.allclose(one["context"], two["context"])
    Runner(model).run(request(steps=2, clip_skip=2))
    with pytest.raises(ValueError, match="layers"):
        model.encode_prompt("a", "", SIZE, SIZE, clip_skip=12)  # the tiny test encoder has fewer layers


def test_clip_skip_on_a_model_without_clip_layers_names_the_field(saved):
    from studio.engine.request import RequestError

    model = load_sd_model(saved["sdxl"][1])
    assert not model.info.clip_skip
    with pytest.raises(RequestError) as err:
        Runner(model).run(request(steps=1, clip_skip=2))
    assert err.value.field == "clip_skip" and "set it to 1" in str(err.value)


def test_prompt_editing_switches_between_prompts_of_different_lengths(saved):
    from tests.test_prompt_editing import record_conds

    model = load_sd_model(saved["sd1"][1])
    seen = record_conds(model)
    long = ", ".join(["a red apple on a wooden table"] * 15)  # two 75-token chunks
    edited = request(prompt=f"[a red apple:{long}:2]", sampler="dpmpp_2m", steps=4)
    runner = Runner(model)
    full = runner.run(edited)
    # Each (prompt, negative) pair is encoded together: the negative is padded to the prompt's chunks.
    assert [tuple(c["context"].shape[:2]) for c in seen] == [(2, 77), (2, 77), (2, 154), (2, 154)]
    np.testing.assert_array_equal(runner.run(edited, branch_from=(full.run_id, 1)).image, full.image)
