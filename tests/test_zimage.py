"""Z-Image through the studio's engine: tiny random models saved on disk, loaded offline, parity with diffusers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.flow import flow_sigmas, shift_flow_t  # noqa: E402
from studio.engine.models.flow.parts import ModelFiles  # noqa: E402
from studio.engine.models.flow.testing_zimage import build_random_zimage, save_diffusers  # noqa: E402
from studio.engine.models.flow.zimage import load_zimage  # noqa: E402
from studio.engine.models.flow.zimage_prompts import chat_text  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.engine.samplers import SAMPLERS  # noqa: E402
from studio.engine.schedules import sampling_sigmas, schedule_at_size  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = build_random_zimage()
    folder = save_diffusers(model, tmp_path_factory.mktemp("zimage") / "Z-Image-Turbo")
    return model, folder


@pytest.fixture(scope="module")
def loaded(saved):
    return load_zimage(ModelFiles("zimage", saved[1]), "cpu", "fp32")


def request(**changes) -> GenerationRequest:
    base = GenerationRequest(prompt="a red fox in the snow", sampler="euler", spacing="trailing", steps=4,
                             cfg_scale=1.0, width=SIZE, height=SIZE, seed=3)
    return base.with_changes(**changes)


def test_a_diffusers_folder_loads_offline_as_turbo_with_its_settings(loaded):
    info = loaded.info
    assert (info.family, info.latent_channels, info.latent_scale, info.size_multiple) == ("zimage", 16, 8, 16)
    assert (info.recommended.steps, info.recommended.cfg_scale) == (8, 1.0)  # the Turbo card: 8 calls, no CFG
    assert loaded.schedule.shift == 3.0
    result = Runner(loaded).run(request())
    assert result.image.shape == (SIZE, SIZE, 3) and result.latent.shape == (16, SIZE // 8, SIZE // 8)


def test_the_base_model_is_told_by_its_name(saved):
    model = load_zimage(ModelFiles("zimage", saved[1], name="Z-Image"), "cpu", "fp32")
    assert (model.variant, model.info.recommended.cfg_scale) == ("base", 5.0)


def test_the_shipped_tokenizer_gives_qwens_token_ids(loaded):
    tokenizer = loaded.prompts.tokenizer
    assert tokenizer("Hello world").input_ids == [9707, 1879]
    # <|im_start|> user \n ... <|im_end|> \n <|im_start|> assistant \n
    ids = loaded.prompts.token_ids("Hello world")
    assert ids == [151644, 872, 198, 9707, 1879, 151645, 198, 151644, 77091, 198]
    assert len(loaded.prompts.token_ids("word " * 600)) == 512  # cut where the pipeline cuts


def _pipeline(saved):
    from studio.engine.models.flow.testing_zimage import zimage_pipeline

    model = saved[0]
    return zimage_pipeline(model.transformer, model.text_encoder, model.vae)


def test_prompt_encoding_matches_the_pipelines_encode_prompt(saved, loaded):
    pipe = _pipeline(saved)
    for prompt in ("a red fox in the snow", "", "一只猫, 3 cats & <tags>"):
        ours = loaded.prompts.encode(prompt)
        theirs = pipe.encode_prompt(prompt, device=torch.device("cpu"), do_classifier_free_guidance=False)[0][0]
        assert ours.shape == theirs.shape
        err = float((ours - theirs.detach()).abs().max())
        print(f"prompt {prompt!r}: {ours.shape[0]} tokens, max difference {err:.2e}")
        assert err < 1e-5
    assert pipe.tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                              add_generation_prompt=True, enable_thinking=True) == chat_text("x")


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_euler_matches_the_zimage_pipeline(saved, loaded, cfg):
    pipe = _pipeline(saved)
    runner = Runner(loaded)
    req = request(cfg_scale=cfg, negative_prompt="blurry" if cfg != 1.0 else "")
    result = runner.run(req)
    noise = runner.history(result.run_id).noise
    cond, uncond = loaded.prompts.encode(req.prompt), loaded.prompts.encode(req.negative_prompt)
    steps = req.steps
    # The pipeline's own times are linspace(1, 1/N, N) shifted by 3: the studio's trailing spacing.
    ts = shift_flow_t(torch.linspace(1, 1 / steps, steps, dtype=torch.float64), 3.0)
    ours = sampling_sigmas(schedule_at_size(loaded.schedule, SIZE, SIZE), steps, "trailing")
    assert torch.allclose(ours, flow_sigmas(ts), rtol=1e-6)
    out = pipe(prompt_embeds=[cond], negative_prompt_embeds=[uncond], latents=noise.clone(), sigmas=ts.tolist(),
               guidance_scale=cfg - 1.0, height=SIZE, width=SIZE, output_type="latent")
    theirs = out.images[0].numpy()
    err = float(np.abs(result.latent - theirs).max() / np.abs(theirs).max())
    print(f"CFG {cfg}: studio vs ZImagePipeline, max relative latent difference {err:.2e}")
    assert err < 1e-4


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_runs_and_a_branch_reproduces_the_run(loaded, sampler):
    spacing = "trailing" if sampler in ("ddim", "ddpm") else "linspace"
    runner = Runner(loaded)
    full = runner.run(request(sampler=sampler, spacing=spacing, steps=3))
    assert np.isfinite(full.latent).all()
    branch = runner.run(request(sampler=sampler, spacing=spacing, steps=3), branch_from=(full.run_id, 1))
    np.testing.assert_array_equal(branch.latent, full.latent)


def test_cfg_branching_img2img_and_inpainting(loaded):
    runner = Runner(loaded)
    req = request(cfg_scale=4.0, negative_prompt="ugly", sampler="euler_a")
    full = runner.run(req)
    np.testing.assert_array_equal(runner.run(req, branch_from=(full.run_id, 1)).latent, full.latent)

    init = np.zeros((SIZE, SIZE, 3), np.uint8)
    init[:, : SIZE // 2] = (200, 30, 30)
    img2img = runner.run(request(init_image=init, strength=0.5))
    assert img2img.steps_run == 2
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[16:48, 16:48] = 1
    inpainted = runner.run(request(init_image=init, mask=mask, strength=1.0))
    np.testing.assert_array_equal(inpainted.image[:8], init[:8])  # outside the mask the image is kept


def test_an_incomplete_folder_is_refused_naming_what_is_missing(saved, tmp_path):
    from studio.engine.models.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="no config.json"):
        load_zimage(ModelFiles("zimage", tmp_path), "cpu", "fp32")
    with pytest.raises(ModelLoadError, match="no Qwen3 text encoder"):
        load_zimage(ModelFiles("zimage", saved[1], text_encoders={"qwen3": tmp_path}), "cpu", "fp32")


def test_the_original_layout_round_trips(saved):
    from studio.engine.models.flow.zimage_layout import transformer_to_diffusers, transformer_to_original

    state = saved[0].transformer.state_dict()
    original = transformer_to_original(state)
    assert "layers.0.attention.qkv.weight" in original and "x_embedder.weight" in original
    assert not any("to_q" in k or "2-1" in k for k in original)
    back = transformer_to_diffusers(original, heads=2, kv_heads=2)
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)


def test_comfyuis_split_files_and_an_all_in_one_file_load_like_the_folder(saved, loaded, tmp_path):
    from studio.engine.models.flow.testing_zimage import save_all_in_one, save_comfy_split

    transformer, encoder, vae = save_comfy_split(saved[0], tmp_path / "ComfyUI")
    split = load_zimage(ModelFiles("zimage", transformer, text_encoders={"qwen3": encoder}, vae=vae), "cpu", "fp32")
    assert split.variant == "turbo" and split.info.name == "z_image_turbo_bf16"
    single = load_zimage(ModelFiles("zimage", save_all_in_one(saved[0], tmp_path / "zimage_aio.safetensors")),
                         "cpu", "fp32")
    reference = Runner(loaded).run(request(cfg_scale=2.0))
    for model in (split, single):
        result = Runner(model).run(request(cfg_scale=2.0))
        np.testing.assert_array_equal(result.latent, reference.latent)
        np.testing.assert_array_equal(result.image, reference.image)


def test_a_diffusion_model_file_alone_asks_for_its_encoder_and_vae(saved, tmp_path):
    from safetensors.torch import save_file

    from studio.engine.models.errors import ModelLoadError
    from studio.engine.models.flow.testing_zimage import save_comfy_split

    transformer, encoder, vae = save_comfy_split(saved[0], tmp_path)
    with pytest.raises(ModelLoadError, match="--text-encoder"):
        load_zimage(ModelFiles("zimage", transformer), "cpu", "fp32")
    with pytest.raises(ModelLoadError, match="--vae"):
        load_zimage(ModelFiles("zimage", transformer, text_encoders={"qwen3": encoder}), "cpu", "fp32")
    with pytest.raises(ModelLoadError, match="not a Qwen3 text encoder"):
        load_zimage(ModelFiles("zimage", transformer, text_encoders={"qwen3": vae}, vae=vae), "cpu", "fp32")
    from studio.engine.models.flow.zimage_layout import transformer_to_original

    cut = tmp_path / "cut.safetensors"
    original = transformer_to_original(saved[0].transformer.state_dict())
    save_file({k: v for k, v in original.items() if k != "layers.1.feed_forward.w2.weight"}, str(cut))
    with pytest.raises(ModelLoadError, match="lacks layers.1.feed_forward.w2.weight"):
        load_zimage(ModelFiles("zimage", cut, text_encoders={"qwen3": encoder}, vae=vae), "cpu", "fp32")


@pytest.mark.parametrize("kind", ["fp8", "scaled fp8", "gguf Q8_0"])
def test_quantised_diffusion_model_files_load_and_stay_close(saved, loaded, tmp_path, kind):
    from studio.engine.models.flow.testing_files import save_fp8, save_gguf
    from studio.engine.models.flow.testing_zimage import save_comfy_split
    from studio.engine.models.flow.zimage_layout import transformer_to_original

    _, encoder, vae = save_comfy_split(saved[0], tmp_path)
    original = transformer_to_original(saved[0].transformer.state_dict())
    if kind.startswith("gguf"):
        path = save_gguf(original, tmp_path / "z_image_turbo-Q8_0.gguf", family="zimage", quant="Q8_0")
    else:
        path = save_fp8(original, tmp_path / "z_image_turbo_fp8_e4m3fn.safetensors", scaled=kind == "scaled fp8")
    model = load_zimage(ModelFiles("zimage", path, text_encoders={"qwen3": encoder}, vae=vae), "cpu", "fp32")
    reference = Runner(loaded).run(request())
    result = Runner(model).run(request())
    err = float(np.abs(result.latent - reference.latent).max() / np.abs(reference.latent).max())
    print(f"{kind}: relative latent difference to the full-precision run {err:.2e}")
    assert 0 < err < 0.1


def test_load_flow_model_finds_the_parts_in_comfyuis_folders(saved, loaded, tmp_path):
    from studio.engine.models.flow.load import load_flow_model
    from studio.engine.models.flow.testing_zimage import save_comfy_split

    transformer, _, _ = save_comfy_split(saved[0], tmp_path / "ComfyUI")
    reference = Runner(loaded).run(request())
    for path in (transformer, saved[1]):
        model = load_flow_model(path, device="cpu", dtype="fp32")
        assert (model.info.family, model.variant) == ("zimage", "turbo")
        np.testing.assert_array_equal(Runner(model).run(request()).latent, reference.latent)


def test_a_lone_transformer_folder_loads_with_its_parts_given(saved, loaded, tmp_path):
    from studio.engine.models.errors import ModelLoadError

    folder = saved[1]
    with pytest.raises(ModelLoadError, match="transformer folder alone"):
        load_zimage(ModelFiles("zimage", folder / "transformer"), "cpu", "fp32")
    model = load_zimage(ModelFiles("zimage", folder / "transformer", text_encoders={"qwen3": folder / "text_encoder"},
                                   vae=folder / "vae", name="Z-Image-Turbo"), "cpu", "fp32")
    np.testing.assert_array_equal(Runner(model).run(request()).latent, Runner(loaded).run(request()).latent)


def test_the_command_line_generates_from_comfyuis_files(saved, tmp_path):
    from PIL import Image

    from studio.cli import main
    from studio.engine.models.flow.testing_zimage import save_comfy_split

    transformer, encoder, vae = save_comfy_split(saved[0], tmp_path / "ComfyUI")
    args = ["--prompt", "a red fox", "--steps", "2", "--cfg", "1", "--sampler", "euler", "--seed", "1",
            "--width", "64", "--height", "64", "--quiet"]
    found = tmp_path / "found.png"
    assert main(["generate", "--model", str(transformer), "--out", str(found), *args]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lone = elsewhere / transformer.name
    transformer.rename(lone)
    given = tmp_path / "given.png"
    assert main(["generate", "--model", str(lone), "--text-encoder", str(encoder), "--vae", str(vae),
                 "--out", str(given), *args]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(found)), np.asarray(Image.open(given)))
    assert "Steps: 2" in Image.open(given).info["parameters"]
