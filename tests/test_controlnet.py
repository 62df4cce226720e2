"""ControlNet through the studio's engine, on tiny random models built here.

A random SD 1.x (and SDXL) model gets a random ControlNet (diffusers' ControlNetModel.from_unet, its
zero convolutions drawn at random so that it steers), saved as a diffusers folder and as original-layout
single files, loaded through the engine and run by the Runner; parity with diffusers'
StableDiffusionControlNetPipeline on the same networks, seed and Euler schedule.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
import torch  # noqa: E402

from studio.cli import main as cli_main  # noqa: E402
from studio.engine.models.errors import ModelLoadError  # noqa: E402
from studio.engine.models.sd.adapter_files import AdapterLibrary  # noqa: E402
from studio.engine.models.sd.controlnet import load_controlnet  # noqa: E402
from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs, save_diffusers, save_single_file  # noqa: E402
from studio.engine.models.sd.testing_controlnet import (  # noqa: E402
    build_random_controlnet,
    save_controlnet_folder,
    save_controlnet_single_file,
)
from studio.engine.request import ControlUnit, GenerationRequest, RequestError  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.io.parameters import parse_parameters  # noqa: E402

SIZE = 32
HINT = (8, 16, 16, 32)  # a small hint encoder: still 8x down, as the latents


def _control_image() -> np.ndarray:
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[8:24, 4:28] = 255  # a white bar on black, as a scribble or edge map
    image[20:30, 15:17] = 255
    return image


@pytest.fixture(scope="module")
def sd1(tmp_path_factory):
    root = tmp_path_factory.mktemp("cn-sd1")
    built = build_random("sd1", seed=0)
    folder = save_diffusers(built, root / "model")
    single, cfg = save_single_file(built, root / "tiny-sd1.safetensors"), save_configs(built, root / "cfg")
    nets = [build_random_controlnet(built.unet, seed=s, hint_channels=HINT) for s in (1, 2)]
    cn_dir = root / "models" / "ControlNet"
    cn_dir.mkdir(parents=True)
    files = {
        "original": save_controlnet_single_file(nets[0], built.unet.config,
                                                cn_dir / "control_tiny_scribble.safetensors"),
        "pth": save_controlnet_single_file(nets[0], built.unet.config, root / "control_tiny.pth"),
        "bare": save_controlnet_single_file(nets[0], built.unet.config, root / "bare.safetensors", prefix=False),
        "folder": save_controlnet_folder(nets[0], root / "tiny-controlnet-diffusers"),
        "second": save_controlnet_single_file(nets[1], built.unet.config, cn_dir / "control_tiny_canny.safetensors"),
    }
    return dict(built=built, folder=folder, single=single, cfg=cfg, nets=nets, files=files, root=root)


@pytest.fixture(scope="module")
def model(sd1):
    return load_sd_model(sd1["single"], config_dir=sd1["cfg"])


def request(units=(), **kw) -> GenerationRequest:
    base = dict(prompt="a red apple", negative_prompt="blurry", sampler="euler", steps=4, cfg_scale=5.0, seed=7,
                width=SIZE, height=SIZE, controlnets=tuple(units))
    return GenerationRequest(**{**base, **kw})


def unit(path, **kw) -> ControlUnit:
    return ControlUnit(str(path), _control_image(), **kw)


@pytest.mark.parametrize("layout", ["original", "pth", "bare", "folder"])
def test_every_layout_loads_the_same_weights(sd1, model, layout):
    net = load_controlnet(sd1["files"][layout], model.unet)
    ref = sd1["nets"][0].state_dict()
    got = net.state_dict()
    assert got.keys() == ref.keys()
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_a_unit_steers_the_run_and_two_units_add_their_residuals(sd1, model):
    runner = Runner(model)
    plain = runner.run(request())
    one = runner.run(request([unit(sd1["files"]["original"])]))
    assert np.abs(one.latent - plain.latent).max() > 1e-2
    # Residuals are linear in the weight, and units add: two half-weight copies are one full-weight unit.
    halves = runner.run(request([unit(sd1["files"]["original"], weight=0.5), unit(sd1["files"]["folder"], weight=0.5)]))
    np.testing.assert_allclose(halves.latent, one.latent, atol=1e-4)
    two = runner.run(request([unit(sd1["files"]["original"]), unit(sd1["files"]["second"], weight=0.7)]))
    assert np.abs(two.latent - one.latent).max() > 1e-2
    assert len(runner.controlnets._nets) == 3  # each file loaded once (the .safetensors twice: two files)
    again = runner.run(request([unit(sd1["files"]["original"])]))
    np.testing.assert_array_equal(again.latent, one.latent)


def _latents(runner, req) -> list[np.ndarray]:
    events = []
    runner.run(req, on_step=events.append)
    return [e.latent for e in events]


def test_guidance_start_and_end_are_fractions_of_the_run_by_step_index(sd1, model):
    """A1111's rule: step i (0-based) of N is steered when start <= i / N <= end."""
    runner = Runner(model)
    path = sd1["files"]["original"]
    steps = 6
    full = _latents(runner, request([unit(path)], steps=steps))
    none = _latents(runner, request(steps=steps))
    first_half = _latents(runner, request([unit(path, end=0.5)], steps=steps))
    second_half = _latents(runner, request([unit(path, start=0.5)], steps=steps))
    for i in range(steps):
        steered_early = i / steps <= 0.5
        if steered_early:  # steps 0..3 (3/6 = 0.5 included) as the full run
            np.testing.assert_array_equal(first_half[i], full[i])
        else:
            assert np.abs(first_half[i] - full[i]).max() > 1e-3
    for i in range(3):  # 0, 1/6, 2/6 < 0.5: not steered yet, so the same as no ControlNet
        np.testing.assert_array_equal(second_half[i], none[i])
    assert np.abs(second_half[3] - none[3]).max() > 1e-3


def test_branching_with_the_same_units_replays_the_run(sd1, model):
    runner = Runner(model)
    req = request([unit(sd1["files"]["original"], end=0.6)], steps=5, sampler="dpmpp_2m")
    full = runner.run(req)
    for k in (1, 3):
        branched = runner.run(req, branch_from=(full.run_id, k))
        np.testing.assert_array_equal(branched.latent, full.latent)


def test_parity_with_the_diffusers_controlnet_pipeline(sd1, model):
    from diffusers import EulerDiscreteScheduler, StableDiffusionControlNetPipeline
    from PIL import Image

    from studio.engine.schedules import sampling_sigmas

    built = sd1["built"]
    req = request([unit(sd1["files"]["original"], weight=0.8)], steps=4)
    result = Runner(model).run(req)
    cfg = {k: v for k, v in built.scheduler_config.items() if not k.startswith("_")}
    pipe = StableDiffusionControlNetPipeline(
        vae=built.vae, text_encoder=built.text_encoders[0], tokenizer=model.prompts.tokenizers[0], unet=built.unet,
        controlnet=sd1["nets"][0], scheduler=EulerDiscreteScheduler(**cfg), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    sigma0 = float(sampling_sigmas(model.schedule, req.steps, req.spacing, model.steps_offset)[0])
    noise = torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=torch.Generator("cpu").manual_seed(req.seed))
    out = pipe(req.prompt, image=Image.fromarray(_control_image()), negative_prompt=req.negative_prompt,
               num_inference_steps=req.steps, guidance_scale=req.cfg_scale, height=SIZE, width=SIZE,
               controlnet_conditioning_scale=0.8, output_type="latent",
               latents=noise * sigma0 / (sigma0**2 + 1) ** 0.5)
    ref = out.images[0].float().numpy()
    err = np.abs(result.latent - ref).max()
    print(f"studio vs diffusers ControlNet pipeline: max abs latent difference {err:.2e}")
    assert err / np.abs(ref).max() < 1e-4


def test_sdxl_controlnets_run_and_a_controlnet_for_another_family_is_refused(sd1, model, tmp_path):
    xl = build_random("sdxl", seed=3)
    xl_model = load_sd_model(save_diffusers(xl, tmp_path / "xl"))
    xl_net = save_controlnet_single_file(build_random_controlnet(xl.unet, seed=4, hint_channels=HINT), xl.unet.config,
                                         tmp_path / "control_xl.safetensors")
    runner = Runner(xl_model)
    plain = runner.run(request(negative_prompt=""))
    steered = runner.run(request([unit(xl_net)], negative_prompt=""))
    assert np.abs(steered.latent - plain.latent).max() > 1e-2
    with pytest.raises(RequestError, match=r"controlnet 1: control_xl\.safetensors is a ControlNet for .*SDXL"):
        Runner(model).run(request([unit(xl_net)]))
    with pytest.raises(ModelLoadError, match=r"tiny-controlnet-diffusers is a ControlNet for"):
        load_controlnet(sd1["files"]["folder"], xl_model.unet)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_bad_files_get_clear_errors_and_the_model_keeps_working(sd1, model, tmp_path):
    from safetensors.torch import save_file

    runner = Runner(model)
    before = runner.run(request())
    good = sd1["files"]["original"].read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[: len(good) // 2])
    evil, marker = tmp_path / "evil.pth", tmp_path / "pwned"
    torch.save({"w": torch.zeros(2), "x": _Payload(marker)}, evil)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all" * 10)
    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down_blocks_0.lora_up.weight": torch.zeros(2, 2)}, str(lora))
    partial = tmp_path / "partial.safetensors"
    from safetensors.torch import load_file

    save_file({k: v for k, v in load_file(str(sd1["files"]["original"])).items() if "zero_convs.1." not in k},
              str(partial))
    cases = [(cut, "cut.safetensors is truncated"), (evil, "evil.pth was refused"),
             (junk, "junk.pth was refused"), (lora, "style.safetensors is not a ControlNet"),
             (partial, "partial.safetensors lacks 2 weights")]
    for path, words in cases:
        with pytest.raises(RequestError, match="controlnet 1: " + words.replace(".", r"\.")):
            runner.run(request([unit(path)]))
    assert not marker.exists()
    np.testing.assert_array_equal(runner.run(request()).latent, before.latent)


def test_names_resolve_through_the_adapter_folders_and_the_infotext_reads_back(sd1, model):
    runner = Runner(model, adapters=AdapterLibrary(checkpoint=sd1["root"] / "models" / "Stable-diffusion" / "x.ckpt",
                                                   include_defaults=False))
    req = request([unit("Control_Tiny_Scribble", preprocessor="scribble", weight=0.75, start=0.1, end=0.9)])
    result = runner.run(req)
    (key, value), = result.infotext
    assert key == "ControlNet 0"
    assert value.startswith("Module: scribble, Model: control_tiny_scribble [")
    assert "Weight: 0.75, Resize Mode: Just Resize" in value and "Guidance Start: 0.1, Guidance End: 0.9" in value
    text = f'a red apple\nSteps: 4, Sampler: Euler, CFG scale: 5, Seed: 7, Size: 32x32, {key}: "{value}"'
    back = parse_parameters(text).request.controlnets
    assert [(u.model, u.preprocessor, u.weight, u.start, u.end) for u in back] == [
        ("control_tiny_scribble", "scribble", 0.75, 0.1, 0.9)]
    with pytest.raises(RequestError, match="no ControlNet named 'control_tiny_scrible' .*closest: control_tiny_scrib"):
        runner.run(request([unit("control_tiny_scrible")]))
    with pytest.raises(RequestError, match="cannot use ControlNets"):
        from studio.engine.models.toy import ToyShapesModel

        Runner(ToyShapesModel()).run(request([unit(sd1["files"]["original"])], width=32, height=32))


def test_cli_runs_units_and_refuses_bad_input_in_one_line(sd1, tmp_path, capsys):
    from studio.io.png import read_parameters, save_image

    hint = tmp_path / "scribble.png"
    save_image(hint, 255 - _control_image())  # dark strokes on paper: the scribble preprocessor inverts it
    out = tmp_path / "out.png"
    base = ["generate", "--model", f"sd:{sd1['folder']}", "--prompt", "a red apple", "--steps", "2",
            "--width", "32", "--height", "32", "--seed", "1", "--sampler", "euler", "--out", str(out), "--quiet"]
    units = ["--controlnet", str(sd1["files"]["original"]), "--control-image", str(hint),
             "--control-preprocessor", "scribble", "--control-weight", "0.6", "--control-end", "0.5",
             "--controlnet", str(sd1["files"]["second"]), "--control-image", str(hint), "--control-start", "0.25"]
    assert cli_main(base + units) == 0
    parsed = parse_parameters(read_parameters(out)).request.controlnets
    assert [(u.model, u.preprocessor, u.weight, u.start, u.end) for u in parsed] == [
        ("control_tiny_scribble", "scribble", 0.6, 0.0, 0.5), ("control_tiny_canny", "none", 1.0, 0.25, 1.0)]
    capsys.readouterr()
    bad = [(["--controlnet", str(sd1["files"]["original"]), "--control-image", str(tmp_path / "nope.png")],
            "nope.png"),
           (["--controlnet", "no_such_controlnet", "--control-image", str(hint)], "no ControlNet named"),
           (["--controlnet", str(sd1["files"]["original"])], "--control-image"),
           (["--control-image", str(hint)], "--controlnet"),
           (["--controlnet", str(sd1["files"]["original"]), "--control-image", str(hint), "--control-weight", "1",
             "--control-weight", "2"], "--control-weight")]
    for flags, words in bad:
        assert cli_main(base + flags) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and words in err and "\n" not in err


def test_a_real_sdxl_controlnet_is_named_as_such_from_its_header(model, tmp_path):
    """The family check reads shapes only: an SDXL ControlNet's header (2048-wide context, label_emb) on SD 1.x."""
    from safetensors.torch import save_file

    fake = {"control_model.input_hint_block.0.weight": torch.zeros(16, 3, 3, 3),
            "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(8, 2048),
            "control_model.label_emb.0.0.weight": torch.zeros(8, 2816)}
    save_file(fake, str(tmp_path / "diffusers_xl_canny_mid.safetensors"))
    with pytest.raises(ModelLoadError, match=r"diffusers_xl_canny_mid\.safetensors is a ControlNet for SDXL; "
                                             r"the loaded model is a model with 32-wide"):
        load_controlnet(tmp_path / "diffusers_xl_canny_mid.safetensors", model.unet)
