"""Inpainting checkpoints (9-channel UNets) on tiny random models built here: found, loaded, run, and
compared with diffusers' StableDiffusionInpaintPipeline on the same networks, seed and Euler schedule."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.models.registry import available_models  # noqa: E402
from studio.engine.models.sd.discovery import discover  # noqa: E402
from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.testing import (  # noqa: E402
    build_random,
    save_configs,
    save_diffusers,
    save_single_file,
)
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(random 9-channel SD 1 model, diffusers folder, single file, a regular 4-channel SD 1 config folder)."""
    root = tmp_path_factory.mktemp("inpaint")
    model = build_random("sd1", seed=3, inpainting=True)
    # The single file loads with the config of the regular family, as the shipped configs are: the
    # loader must widen the UNet's input to 9 channels itself.
    regular_cfg = save_configs(build_random("sd1", seed=0), root / "cfg")
    return (model, save_diffusers(model, root / "models" / "tiny-inpainting"),
            save_single_file(model, root / "models" / "tiny-sd15-inpainting.safetensors"), regular_cfg)


@pytest.fixture(scope="module")
def loaded(saved):
    _, _, single, cfg = saved
    return load_sd_model(single, config_dir=cfg)


def request(**kw) -> GenerationRequest:
    base = dict(prompt="a red apple on a table", negative_prompt="blurry", sampler="euler", steps=4, cfg_scale=5.0,
                seed=7, width=SIZE, height=SIZE)
    return GenerationRequest(**{**base, **kw})


def picture() -> tuple[np.ndarray, np.ndarray]:
    """A two-colour init image and a square mask in its middle."""
    init = np.zeros((SIZE, SIZE, 3), np.uint8)
    init[:, : SIZE // 2] = (200, 30, 30)
    init[:, SIZE // 2:] = (20, 90, 180)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[16:48, 24:40] = 1
    return init, mask


def test_inpainting_checkpoints_are_found_and_labelled_in_both_layouts(saved):
    _, folder, single, _ = saved
    found = {m.layout: m for m in discover([folder.parent], include_defaults=False)}
    assert {(m.name, m.family, m.inpainting) for m in found.values()} == {
        ("tiny-inpainting", "sd1", True), ("tiny-sd15-inpainting", "sd1", True)}
    labels = {e.label for e in available_models(sd_dirs=[folder.parent]) if e.key.startswith("sd:")}
    assert labels == {"tiny-inpainting (SD 1.x inpainting)", "tiny-sd15-inpainting (SD 1.x inpainting)"}


def test_both_layouts_load_the_nine_channel_weights(saved, loaded):
    built, folder, _, _ = saved
    for model in (load_sd_model(folder), loaded):
        assert model.info.inpainting and model.info.latent_channels == 4
        assert model.unet.config.in_channels == 9
        ref = built.unet.state_dict()
        assert all(torch.equal(model.unet.state_dict()[k], ref[k]) for k in ref)


def test_txt2img_img2img_and_inpainting_run_and_keep_the_outside(loaded):
    runner = Runner(loaded)
    init, mask = picture()
    txt = runner.run(request())
    img2img = runner.run(request(init_image=init, strength=0.6))
    events = []
    inpainted = runner.run(request(init_image=init, mask=mask, strength=1.0), on_step=events.append)
    for result in (txt, img2img, inpainted):
        assert result.image.shape == (SIZE, SIZE, 3) and np.isfinite(result.latent).all()
    assert events[0].latent.shape == (4, SIZE // 8, SIZE // 8)  # the state stays a 4-channel latent
    outside = mask == 0
    np.testing.assert_array_equal(inpainted.image[outside], init[outside])
    assert not np.array_equal(inpainted.image[mask == 1], init[mask == 1])
    # The conditioning is part of the run: another mask gives another picture inside.
    mask2 = np.zeros_like(mask)
    mask2[8:56, 8:56] = 1
    other = runner.run(request(init_image=init, mask=mask2, strength=1.0))
    assert not np.array_equal(other.latent, inpainted.latent)


def test_branching_an_inpainting_run_replays_it(loaded):
    runner = Runner(loaded)
    init, mask = picture()
    req = request(init_image=init, mask=mask, strength=1.0, sampler="euler_a", steps=5)
    full = runner.run(req)
    branched = runner.run(req, branch_from=(full.run_id, 2))
    np.testing.assert_array_equal(full.image, branched.image)


def _inpaint_pipeline(built, tokenizer):
    from diffusers import EulerDiscreteScheduler, StableDiffusionInpaintPipeline

    cfg = {k: v for k, v in built.scheduler_config.items() if not k.startswith("_")}
    pipe = StableDiffusionInpaintPipeline(
        vae=built.vae, text_encoder=built.text_encoders[0], tokenizer=tokenizer, unet=built.unet,
        scheduler=EulerDiscreteScheduler(**cfg), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def vae_mean(monkeypatch):
    """diffusers samples the VAE posterior when it encodes; the studio takes its mean (as for img2img).
    With the mean on both sides the two runs draw the same noise from the same generator."""
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    monkeypatch.setattr(DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean)


def _relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def test_parity_with_diffusers_inpainting_pipeline(saved, loaded, vae_mean):
    """Mask and masked image as conditioning, img2img start at strength 0.75, Euler, CFG 5: same latents."""
    from PIL import Image

    built = saved[0]
    init, mask = picture()
    req = request(init_image=init, mask=mask, strength=0.75, steps=8)
    ours = Runner(loaded).run(req)
    pipe = _inpaint_pipeline(built, loaded.prompts.tokenizers[0])
    out = pipe(req.prompt, negative_prompt=req.negative_prompt, image=Image.fromarray(init),
               mask_image=Image.fromarray((mask * 255).astype(np.uint8)), strength=req.strength,
               num_inference_steps=req.steps, guidance_scale=req.cfg_scale, height=SIZE, width=SIZE,
               output_type="latent", generator=torch.Generator("cpu").manual_seed(req.seed))
    err = _relative_error(ours.latent, out.images[0].float().numpy())
    print(f"inpainting: studio vs diffusers, max relative latent error {err:.2e}")
    assert err < 1e-4


def test_parity_txt2img_is_a_full_mask_over_grey(saved, loaded, vae_mean):
    """txt2img on an inpainting model: the whole picture masked, the masked image all grey (diffusers with an
    all-white mask at strength 1 builds the same conditioning)."""
    from PIL import Image

    from studio.engine.schedules import sampling_sigmas

    built = saved[0]
    req = request(steps=4)
    ours = Runner(loaded).run(req)
    sigma0 = float(sampling_sigmas(loaded.schedule, req.steps, req.spacing, loaded.steps_offset)[0])
    noise = torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=torch.Generator("cpu").manual_seed(req.seed))
    pipe = _inpaint_pipeline(built, loaded.prompts.tokenizers[0])
    out = pipe(req.prompt, negative_prompt=req.negative_prompt, image=Image.new("RGB", (SIZE, SIZE), (90, 10, 200)),
               mask_image=Image.new("L", (SIZE, SIZE), 255), strength=1.0, num_inference_steps=req.steps,
               guidance_scale=req.cfg_scale, height=SIZE, width=SIZE, output_type="latent",
               latents=noise * sigma0 / (sigma0**2 + 1) ** 0.5)
    err = _relative_error(ours.latent, out.images[0].float().numpy())
    print(f"inpainting txt2img: studio vs diffusers, max relative latent error {err:.2e}")
    assert err < 1e-4


def test_sdxl_inpainting_loads_and_runs(tmp_path):
    built = build_random("sdxl", seed=5, inpainting=True)
    single = save_single_file(built, tmp_path / "tiny-xl-inpainting.safetensors")
    model = load_sd_model(single, config_dir=save_configs(build_random("sdxl", seed=1), tmp_path / "cfg"))
    assert model.info.inpainting and "SDXL inpainting" in model.info.name
    init, mask = picture()
    result = Runner(model).run(request(negative_prompt="", init_image=init, mask=mask, strength=1.0, steps=2))
    np.testing.assert_array_equal(result.image[mask == 0], init[mask == 0])


def test_only_masked_with_an_inpainting_model(loaded):
    """The crop is what the 9-channel model is conditioned on; the photo outside the mask stays as it was."""
    rng = np.random.default_rng(2)
    photo = rng.integers(0, 256, (96, 128, 3)).astype(np.uint8)
    mask = np.zeros((96, 128), np.float32)
    mask[40:56, 60:80] = 1
    events = []
    result = Runner(loaded).run(request(init_image=photo, mask=mask, strength=1.0, steps=2, inpaint_area="masked",
                                        inpaint_padding=4, masked_content="latent_nothing"), on_step=events.append)
    assert result.image.shape == photo.shape and events[0].latent.shape == (4, SIZE // 8, SIZE // 8)
    np.testing.assert_array_equal(result.image[mask == 0], photo[mask == 0])
