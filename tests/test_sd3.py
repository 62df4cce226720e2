"""SD 3.x through the studio's engine, on tiny random MMDiTs built in code (studio/engine/models/flow/testing_sd3.py).

Saved as a diffusers folder, as Stability's all-in-one checkpoint and as ComfyUI's split files, loaded
offline through load_sd3, run by the Runner with every sampler, branched, img2img and inpainting; parity
with diffusers' StableDiffusion3Pipeline on the same networks, noise, flow times and prompts.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.flow import sigma_to_flow_t  # noqa: E402
from studio.engine.models.errors import ModelLoadError  # noqa: E402
from studio.engine.models.flow.parts import ModelFiles  # noqa: E402
from studio.engine.models.flow.sd3 import load_sd3  # noqa: E402
from studio.engine.models.flow.testing_sd3 import (  # noqa: E402
    build_random_sd3,
    save_all_in_one,
    save_diffusers,
    save_split,
)
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.engine.samplers import SAMPLERS  # noqa: E402
from studio.engine.schedules import sampling_sigmas, schedule_at_size  # noqa: E402

SIZE = 64  # pixels; latents 8x8, 16 image tokens


@pytest.fixture(scope="module")
def built():
    return build_random_sd3("sd3", seed=1)


@pytest.fixture(scope="module")
def saved(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("sd3")
    return {"folder": save_diffusers(built, root / "sd3_tiny_diffusers"),
            "aio": save_all_in_one(built, root / "sd3_tiny_incl_clips_t5.safetensors"),
            "bare": save_all_in_one(built, root / "sd3_tiny.safetensors", encoders=False),
            "split": save_split(built, root / "models", vae_layout="original")}


@pytest.fixture(scope="module")
def model(saved):
    return load_sd3(ModelFiles("sd3", saved["aio"]), "cpu", torch.float32)


def request(**kw) -> GenerationRequest:
    base = dict(prompt="a red apple on a table", negative_prompt="blurry", sampler="euler", steps=4, cfg_scale=4.5,
                seed=7, width=SIZE, height=SIZE, spacing="trailing")
    return GenerationRequest(**{**base, **kw})


def _same_weights(loaded, built) -> None:
    pairs = [(loaded.transformer, built.transformer), (loaded.codec.vae, built.vae),
             (loaded.prompts.clips[0], built.clip_l), (loaded.prompts.clips[1], built.clip_g),
             (loaded.prompts.t5, built.t5)]
    for mine, ref in pairs:
        a, b = mine.state_dict(), ref.state_dict()
        assert set(a) == set(b)
        assert all(torch.equal(a[k], b[k]) for k in b), f"{type(ref).__name__}: weights differ after loading"


def test_every_layout_loads_the_same_weights(built, saved):
    split = saved["split"]
    encoders = {role: split[role] for role in ("clip_l", "clip_g", "t5xxl")}
    layouts = {
        "folder": ModelFiles("sd3", saved["folder"]),
        "all-in-one": ModelFiles("sd3", saved["aio"]),
        "all-in-one without encoders + split encoders": ModelFiles("sd3", saved["bare"], encoders),
        "split (original-layout VAE)": ModelFiles("sd3", split["transformer"], encoders, split["vae"]),
    }
    for label, files in layouts.items():
        loaded = load_sd3(files, "cpu", torch.float32)
        _same_weights(loaded, built)
        assert loaded.info.family == "sd3" and loaded.info.latent_channels == 16, label
        assert loaded.info.latent_scale == 8 and loaded.info.size_multiple == 16, label
        assert loaded.schedule.shift == 3.0 and loaded.load_notices == (), label


def test_the_folders_scheduler_shift_is_read(built, tmp_path):
    folder = save_diffusers(built, tmp_path / "shifted", shift=2.5, tokenizers=False)
    assert load_sd3(ModelFiles("sd3", folder), "cpu", torch.float32).schedule.shift == 2.5


def test_prompt_encoding_matches_the_pipelines_encode_prompt(model):
    pipe = _pipeline(model)
    prompt, negative = "a red apple on a table, (studio light:1.0)", "blurry"
    cond, uncond = model.encode_prompt(prompt, negative, SIZE, SIZE)
    # The pipeline reads the syntax-free text; weight 1.0 brackets change nothing for CLIP.
    pe, npe, pooled, npooled = pipe.encode_prompt("a red apple on a table, studio light", None, None,
                                                  negative_prompt=negative, do_classifier_free_guidance=True)
    assert cond["context"].shape == (1, 77 + 256, 128) and cond["pooled"].shape == (1, 128)
    errors = [float((a - b).abs().max()) for a, b in
              ((cond["context"], pe), (uncond["context"], npe), (cond["pooled"], pooled), (uncond["pooled"], npooled))]
    print(f"SD3 prompt encoding vs encode_prompt: max difference {max(errors):.2e}")
    assert max(errors) < 1e-5


def _pipeline(model, t5: bool = True):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    p = model.prompts
    # shift 1: the pipeline's scheduler shifts the sigmas it is given, and ours are shifted already.
    return StableDiffusion3Pipeline(
        transformer=model.transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0), vae=model.codec.vae,
        text_encoder=p.clips[0], tokenizer=p.clip_tokenizers[0], text_encoder_2=p.clips[1],
        tokenizer_2=p.clip_tokenizers[1], text_encoder_3=p.t5 if t5 else None,
        tokenizer_3=p.t5_tokenizer if t5 else None)


def _pipeline_latent(model, req: GenerationRequest, t5: bool = True) -> np.ndarray:
    schedule = schedule_at_size(model.schedule, req.width, req.height)
    ts = sigma_to_flow_t(sampling_sigmas(schedule, req.steps, req.spacing)[:-1].double())
    noise = torch.randn((1, 16, SIZE // 8, SIZE // 8), generator=torch.Generator("cpu").manual_seed(req.seed))
    pipe = _pipeline(model, t5)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
               guidance_scale=req.cfg_scale, height=SIZE, width=SIZE, sigmas=[float(t) for t in ts], latents=noise,
               output_type="latent")
    return out.images[0].float().numpy()


@pytest.mark.parametrize("cfg", [4.5, 1.0])
def test_parity_with_stable_diffusion_3_pipeline(model, cfg):
    """Same networks, noise, flow times (shift 3, trailing) and prompts: the studio's Euler is the pipeline's."""
    req = request(cfg_scale=cfg)
    ours = Runner(model).run(req).latent
    ref = _pipeline_latent(model, req)
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    print(f"SD3 cfg {cfg}: studio vs StableDiffusion3Pipeline, max relative latent difference {err:.2e}")
    assert err < 1e-4


def test_without_t5_the_context_is_zeros_as_in_the_pipeline(built, saved):
    split = saved["split"]
    files = ModelFiles("sd3", split["transformer"], {r: split[r] for r in ("clip_l", "clip_g")}, split["vae"])
    no_t5 = load_sd3(files, "cpu", torch.float32)
    assert no_t5.prompts.t5 is None and "T5-XXL" in no_t5.load_notices[0]
    cond, _ = no_t5.encode_prompt("a red apple", "", SIZE, SIZE)
    assert cond["context"].shape == (1, 77 + 256, 128) and not cond["context"][:, 77:].any()
    req = request()
    err = np.abs(Runner(no_t5).run(req).latent - _pipeline_latent(no_t5, req, t5=False)).max()
    assert err < 1e-4


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_runs_sd3(model, name):
    result = Runner(model).run(request(sampler=name, steps=3))
    assert result.image.shape == (SIZE, SIZE, 3) and np.isfinite(result.latent).all()


def test_branching_img2img_and_inpainting_work_on_sd3(model):
    runner = Runner(model)
    full = runner.run(request(sampler="dpmpp_2m", steps=5))
    branched = runner.run(request(sampler="dpmpp_2m", steps=5), branch_from=(full.run_id, 2))
    np.testing.assert_array_equal(full.latent, branched.latent)
    np.testing.assert_array_equal(full.image, branched.image)

    init = np.zeros((SIZE, SIZE, 3), np.uint8)
    init[:, : SIZE // 2] = (200, 30, 30)
    img2img = runner.run(request(init_image=init, strength=0.5))
    assert img2img.steps_run == 2
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[16:48, 16:48] = 1
    inpainted = runner.run(request(init_image=init, mask=mask, strength=1.0))
    np.testing.assert_array_equal(inpainted.image[:8], init[:8])  # outside the mask the image is kept
    # The blend itself: Euler lands exactly on the init image's latent where the mask is 0 (latent rows 0-1).
    known = model.encode_image(init)[0].numpy()
    np.testing.assert_allclose(inpainted.latent[:, :2], known[:, :2], atol=1e-5)
    assert not np.allclose(inpainted.latent[:, 3:5, 3:5], known[:, 3:5, 3:5], atol=1e-2)


def test_long_prompts_chunk_the_clip_part_and_truncate_t5(model):
    long_prompt = ", ".join(f"word{i}" for i in range(60))  # well over 75 CLIP tokens
    cond, uncond = model.encode_prompt(long_prompt, "", SIZE, SIZE)
    assert cond["context"].shape == uncond["context"].shape
    assert cond["context"].shape[1] > 77 + 256 and (cond["context"].shape[1] - 256) % 77 == 0
    short, _ = model.encode_prompt("a red apple", "", SIZE, SIZE)
    assert short["context"].shape[1] == 77 + 256
    Runner(model).run(request(prompt=long_prompt, steps=2))


def test_emphasis_changes_the_clip_part_only(model):
    plain, _ = model.encode_prompt("a red apple", "", SIZE, SIZE)
    weighted, _ = model.encode_prompt("a (red:1.5) apple", "", SIZE, SIZE)
    assert not torch.equal(plain["context"][:, :77], weighted["context"][:, :77])
    assert torch.equal(plain["context"][:, 77:], weighted["context"][:, 77:])  # T5 reads "a red apple"


def test_mmditx_dual_attention_loads_from_stabilitys_layout(tmp_path):
    """SD 3.5 Medium's MMDiT-X (attn2 in the first blocks, RMS q/k norms) from an all-in-one file."""
    built = build_random_sd3("mmditx", seed=2)
    loaded = load_sd3(ModelFiles("sd3", save_all_in_one(built, tmp_path / "sd3.5_tiny_medium.safetensors")),
                      "cpu", torch.float32)
    cfg = loaded.transformer.config
    assert cfg.dual_attention_layers == (0,) and cfg.qk_norm == "rms_norm" and cfg.attention_head_dim == 32
    assert loaded.variant == "3.5-medium" and loaded.info.recommended.steps == 40
    _same_weights(loaded, built)
    Runner(loaded).run(request(steps=2))


def test_missing_parts_are_refused_saying_what_to_add(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="clip_l.*models/text_encoders"):
        load_sd3(ModelFiles("sd3", saved["bare"]), "cpu", torch.float32)
    split = saved["split"]
    encoders = {r: split[r] for r in ("clip_l", "clip_g")}
    with pytest.raises(ModelLoadError, match="no VAE inside.*--vae"):
        load_sd3(ModelFiles("sd3", split["transformer"], encoders), "cpu", torch.float32)
    with pytest.raises(ModelLoadError, match="no SD 3 transformer"):
        load_sd3(ModelFiles("sd3", split["clip_l"], encoders, split["vae"]), "cpu", torch.float32)
    with pytest.raises(ModelLoadError, match="no SD 3 model"):
        load_sd3(ModelFiles("sd3", tmp_path / "nothing.safetensors"), "cpu", torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_weights_run_and_t5_keeps_its_output_layers_in_fp32(saved, dtype):
    half = load_sd3(ModelFiles("sd3", saved["aio"]), "cpu", dtype)
    assert half.transformer.dtype == dtype and half.dtype == torch.float32  # latents stay fp32
    wo = [m.weight.dtype for n, m in half.prompts.t5.named_modules() if n.endswith(".wo")]
    assert wo and all(d == (torch.float32 if dtype == torch.float16 else dtype) for d in wo)
    result = Runner(half).run(request(steps=2))
    assert np.isfinite(result.latent).all() and result.image.shape == (SIZE, SIZE, 3)
