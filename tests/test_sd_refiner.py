"""The SDXL refiner: detected, loaded beside an SDXL base, and switched to part-way through one run.

Tiny random SDXL base and refiner networks are built here, saved as diffusers folders and as
original-layout single files, and run through the studio's Runner; diffusers' base + refiner
"ensemble of experts" (denoising_end / denoising_start) is the reference.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.models.sd.adapter_files import AdapterLibrary  # noqa: E402
from studio.engine.models.sd.detect import detect_keys  # noqa: E402
from studio.engine.models.sd.discovery import scan  # noqa: E402
from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.refiner_files import short_hash  # noqa: E402
from studio.engine.models.sd.safety import read_safetensors_header  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs, save_diffusers, save_single_file  # noqa: E402
from studio.engine.refiner import refiner_steps  # noqa: E402
from studio.engine.request import GenerationRequest, RequestError  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

SIZE = 64  # pixels; latents are 8x8


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A checkpoint folder as AUTOMATIC1111 users keep it: an SDXL base and a refiner (a folder and a file)."""
    root = tmp_path_factory.mktemp("Stable-diffusion")
    base, refiner = build_random("sdxl", seed=2), build_random("sdxl_refiner", seed=3)
    return dict(
        root=root, base=base, refiner=refiner,
        base_dir=save_diffusers(base, root / "tiny_xl_base"),
        refiner_dir=save_diffusers(refiner, root / "tiny_xl_refiner"),
        refiner_file=save_single_file(refiner, root / "sd_xl_refiner_tiny.safetensors"),
        refiner_cfg=save_configs(refiner, tmp_path_factory.mktemp("refiner_cfg")),
    )


@pytest.fixture(scope="module")
def runner(models):
    base = load_sd_model(models["base_dir"], tiny_decoder=False)
    return Runner(base, adapters=AdapterLibrary((), models["base_dir"], include_defaults=False))


def request(**kw) -> GenerationRequest:
    base = dict(prompt="a lighthouse at dusk", negative_prompt="blurry", sampler="euler", steps=4, cfg_scale=5.0,
                seed=11, width=SIZE, height=SIZE)
    return GenerationRequest(**{**base, **kw})


def test_refiner_files_are_detected_and_load_alike_in_both_layouts(models):
    header = read_safetensors_header(models["refiner_file"])
    assert detect_keys({k: s for k, (_, s) in header.items()}).family == "sdxl_refiner"
    found = {m.name: m for m in scan([models["root"]], include_defaults=False).found}
    assert found["tiny_xl_refiner"].family == found["sd_xl_refiner_tiny"].family == "sdxl_refiner"
    assert found["tiny_xl_base"].family == "sdxl"
    built = models["refiner"]
    loaded = [load_sd_model(models["refiner_dir"], tiny_decoder=False),
              load_sd_model(models["refiner_file"], config_dir=models["refiner_cfg"], tiny_decoder=False)]
    for m in loaded:
        assert m.info.family == "sdxl_refiner" and m.info.name.endswith("(SDXL refiner)")
        assert not m.info.clip_skip and len(m.prompts.encoders) == 1
        for mine, ref in [(m.unet, built.unet), (m.vae, built.vae), (m.prompts.encoders[0], built.text_encoders[0])]:
            a, b = mine.state_dict(), ref.state_dict()
            assert all(torch.equal(a[k], b[k]) for k in b)
    cond, uncond = loaded[0].encode_prompt("a lighthouse", "", SIZE, 48)
    # Context from the one OpenCLIP encoder's penultimate layer, its pooled embedding, and the aesthetic score.
    assert cond["context"].shape == (1, 77, 32) and cond["pooled"].shape == (1, 32)
    assert cond["time_ids"].tolist() == [[48, SIZE, 0, 0, 6.0]]
    assert uncond["time_ids"].tolist() == [[48, SIZE, 0, 0, 2.5]]
    assert uncond["context"].abs().sum() > 0  # the refiner's model_index: an empty negative is encoded, not zeros


def test_the_shipped_refiner_config_describes_the_published_architecture():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from studio.engine.models.sd.load import CONFIGS

    root = CONFIGS / "sdxl_refiner"
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet"))
        assert count(unet) == 2_259_526_660  # stabilityai/stable-diffusion-xl-refiner-1.0's UNet
        assert unet.add_embedding.linear_1.in_features == 5 * 256 + 1280
        assert count(AutoencoderKL.from_config(AutoencoderKL.load_config(root / "vae"))) == 83_653_863
        assert count(CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(root / "text_encoder_2"))) \
            == 694_659_840
    assert not (root / "text_encoder").exists()


def test_a1111_switch_rule_matches_diffusers_timestep_cutoff(runner):
    """Step i is the refiner's when (999 - t_i) / 1000 >= switch; diffusers keeps t >= round(1000 (1 - s))."""
    from studio.engine.schedules import sampling_sigmas

    model = runner.model
    for steps, switch in [(20, 0.8), (4, 0.5), (30, 0.65), (7, 0.3)]:
        sigmas = sampling_sigmas(model.schedule, steps, "leading", model.steps_offset)
        ts = [round(float(model.schedule.sigma_to_t(s.reshape(1)))) for s in sigmas[:-1]]
        expected = [t < round(1000 * (1 - switch)) for t in ts]
        assert refiner_steps(model.schedule, sigmas, switch) == expected
    assert sum(refiner_steps(model.schedule, sampling_sigmas(model.schedule, 20, "leading", 1), 0.8)) == 4


def test_the_refiner_takes_the_last_steps_of_one_run_and_the_switch_is_marked(runner):
    plain, refined = [], []
    a = runner.run(request(), on_step=plain.append)
    b = runner.run(request(refiner="TINY_XL_REFINER", refiner_switch=0.5), on_step=refined.append)
    assert [e.index for e in refined] == [0, 1, 2, 3] and all(e.total == 4 for e in refined)
    for e, f in zip(plain[:2], refined[:2], strict=True):
        np.testing.assert_array_equal(e.latent, f.latent)  # the base's half is the base-only run's
    for e, f in zip(plain[2:], refined[2:], strict=True):
        assert np.abs(e.latent - f.latent).max() > 1e-3
    assert [e.model_switch for e in refined] == [False, False, True, False]
    assert not any(e.model_switch for e in plain)
    assert runner.history(b.run_id).refiner_from == 2
    assert dict(b.infotext) == {"Refiner": "tiny_xl_refiner", "Refiner switch at": "0.5"}
    assert a.infotext == () and not np.array_equal(a.image, b.image)


def test_branching_before_or_after_the_switch_reproduces_the_run(runner):
    events = []
    req = request(refiner="tiny_xl_refiner", refiner_switch=0.5, sampler="dpmpp_2m", steps=5)
    full = runner.run(req)
    for k in (0, 3):  # before the switch (at 2 of 5 here: t = 601, 401 run on the base) and after it
        events.clear()
        branch = runner.run(req, on_step=events.append, branch_from=(full.run_id, k))
        np.testing.assert_array_equal(branch.latent, full.latent)
        np.testing.assert_array_equal(branch.image, full.image)
        assert [e.index for e in events if e.model_switch] == ([2] if k < 2 else [])
        assert runner.history(branch.run_id).refiner_from == 2
        assert branch.infotext == full.infotext


def test_the_refiner_is_loaded_once_and_replaced_when_another_is_asked_for(runner, models, monkeypatch, tmp_path):
    runner.run(request(refiner="tiny_xl_refiner", steps=2))
    first = runner._refiners.loaded
    runner.run(request(refiner=f"sd:{models['refiner_dir']}", steps=2))  # the same folder by key: kept
    assert runner._refiners.loaded.model is first.model
    # A single file by path, with AUTOMATIC1111's short hash in the parameters. (Its tiny weights need the tiny
    # configs where a real refiner uses the shipped ones.)
    (tmp_path / "sdxl_refiner").symlink_to(models["refiner_cfg"])
    monkeypatch.setattr("studio.engine.models.sd.load.CONFIGS", tmp_path)
    result = runner.run(request(refiner=str(models["refiner_file"]), refiner_switch=0.5, steps=2))
    digest = short_hash(models["refiner_file"])
    assert runner._refiners.loaded.model is not first.model and len(digest) == 10
    assert dict(result.infotext)["Refiner"] == f"sd_xl_refiner_tiny [{digest}]"


def test_wrong_refiners_and_bases_name_the_refiner_field(runner, models):
    with pytest.raises(RequestError, match="tiny_xl_base is an SDXL model, not an SDXL refiner") as err:
        runner.run(request(refiner="tiny_xl_base"))
    assert err.value.field == "refiner"
    with pytest.raises(RequestError, match=r"no checkpoint named 'tiny_xl_refine' \(closest: tiny_xl_refiner"):
        runner.run(request(refiner="tiny_xl_refine"))
    # An SDXL inpainting base conditions its steps on the mask; the refiner's would need the blend: refused.
    from dataclasses import replace
    from types import SimpleNamespace

    from studio.engine.models.sd.refiner_files import RefinerSlot

    inpainting_base = SimpleNamespace(info=replace(runner.model.info, name="xl-inpainting", inpainting=True))
    with pytest.raises(RequestError, match="'xl-inpainting' is an inpainting model") as err:
        RefinerSlot([models["root"]], include_defaults=False).get("tiny_xl_refiner", inpainting_base)
    assert err.value.field == "refiner"
    from studio.engine.models.toy import ToyShapesModel

    toy = Runner(ToyShapesModel())
    with pytest.raises(RequestError, match="works with an SDXL base model") as err:
        toy.run(GenerationRequest(prompt="x", steps=2, width=32, height=32, refiner=str(models["refiner_dir"])))
    assert err.value.field == "refiner"


def test_parity_with_the_diffusers_ensemble_of_experts(runner, models):
    """diffusers' base (denoising_end) then refiner (denoising_start), Euler, same noise: same latents."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    from studio.engine.schedules import sampling_sigmas

    base_model = runner.model
    refiner = load_sd_model(models["refiner_dir"], tiny_decoder=False)
    # 6 steps switching at 0.5: the base runs t = 831, 665 and the refiner 499 .. 1 (int(6 * 0.5) would say 3).
    req = request(steps=6, refiner="tiny_xl_refiner", refiner_switch=0.5)
    ours = runner.run(req)
    cfg = {k: v for k, v in models["base"].scheduler_config.items() if not k.startswith("_")}
    b, r = models["base"], models["refiner"]
    tok = base_model.prompts.tokenizers
    base_pipe = StableDiffusionXLPipeline(
        vae=b.vae, text_encoder=b.text_encoders[0], text_encoder_2=b.text_encoders[1], tokenizer=tok[0],
        tokenizer_2=tok[1], unet=b.unet, scheduler=EulerDiscreteScheduler(**cfg), add_watermarker=False)
    refiner_pipe = StableDiffusionXLImg2ImgPipeline(
        vae=r.vae, text_encoder=None, text_encoder_2=r.text_encoders[0], tokenizer=None,
        tokenizer_2=refiner.prompts.tokenizers[0], unet=r.unet, scheduler=EulerDiscreteScheduler(**cfg),
        requires_aesthetics_score=True, force_zeros_for_empty_prompt=False, add_watermarker=False)
    for pipe in (base_pipe, refiner_pipe):
        pipe.set_progress_bar_config(disable=True)
    sigma0 = float(sampling_sigmas(base_model.schedule, req.steps, req.spacing, base_model.steps_offset)[0])
    noise = torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=torch.Generator("cpu").manual_seed(req.seed))
    common = dict(prompt=req.prompt, negative_prompt=req.negative_prompt, num_inference_steps=req.steps,
                  guidance_scale=req.cfg_scale, output_type="latent")
    half = base_pipe(**common, height=SIZE, width=SIZE, denoising_end=req.refiner_switch,
                     latents=noise * sigma0 / (sigma0**2 + 1) ** 0.5).images
    ref = refiner_pipe(**common, image=half, denoising_start=req.refiner_switch).images[0].float().numpy()
    err = np.abs(ours.latent - ref).max() / np.abs(ref).max()
    print(f"studio vs diffusers ensemble of experts: relative latent error {err:.2e}")
    assert err < 1e-4, f"studio vs diffusers ensemble of experts: relative latent error {err:.2e}"


def test_the_command_line_takes_a_refiner_and_its_switch(runner, models, tmp_path, capsys):
    from studio import cli
    from studio.io.png import load_image

    out = tmp_path / "refined.png"
    args = ["generate", "--model", f"sd:{models['base_dir']}", "--prompt", "a lighthouse at dusk", "--negative",
            "blurry", "--sampler", "euler", "--steps", "4", "--cfg", "5", "--seed", "11", "--width", "64",
            "--height", "64", "--quiet"]
    assert cli.main([*args, "--refiner", "tiny_xl_refiner", "--refiner-switch", "0.5", "--out", str(out)]) == 0
    expected = runner.run(request(refiner="tiny_xl_refiner", refiner_switch=0.5))
    np.testing.assert_array_equal(load_image(out), expected.image)
    # The parameters text carries the refiner as AUTOMATIC1111 writes it, and reads back into the request.
    from studio.io.parameters import parse_parameters
    from studio.io.png import read_parameters

    text = read_parameters(out)
    assert "Refiner: tiny_xl_refiner, Refiner switch at: 0.5" in text
    parsed = parse_parameters(text).request
    assert (parsed.refiner, parsed.refiner_switch) == ("tiny_xl_refiner", 0.5)
    assert np.array_equal(runner.run(parsed.with_changes(model="")).image, expected.image)
    assert cli.main([*args, "--refiner", "tiny_xl_refinr", "--out", str(out)]) == 2
    assert "error: refiner: no checkpoint named 'tiny_xl_refinr' (closest: tiny_xl_refiner" in capsys.readouterr().err
