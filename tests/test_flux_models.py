"""Flux.1 (dev, schnell, Fill) on tiny random transformers: loading, parity with FluxPipeline, every sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from studio.engine.flow import sigma_to_flow_t  # noqa: E402
from studio.engine.models.flow.flux import FluxModel, image_positions, load_flux, pack, unpack  # noqa: E402
from studio.engine.models.flow.parts import ModelFiles  # noqa: E402
from studio.engine.models.flow.testing_flux import build_random_flux, save_diffusers  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.engine.samplers import SAMPLERS  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux")
    return {v: save_diffusers(build_random_flux(v, seed=i), root / v) for i, v in enumerate(("dev", "schnell"))}


@pytest.fixture(scope="module")
def dev(folders) -> FluxModel:
    return load_flux(ModelFiles("flux", folders["dev"]), CPU, torch.float32)


@pytest.fixture(scope="module")
def schnell(folders) -> FluxModel:
    return load_flux(ModelFiles("flux", folders["schnell"]), CPU, torch.float32)


def request(**kw) -> GenerationRequest:
    base = dict(prompt="a red fox", negative_prompt="", width=64, height=48, steps=4, seed=3, cfg_scale=1.0,
                sampler="euler", spacing="trailing")
    return GenerationRequest(**{**base, **kw})


def test_pack_and_positions_follow_the_pipeline():
    from diffusers import FluxPipeline

    x = torch.randn(1, 16, 6, 8)
    assert torch.equal(pack(x), FluxPipeline._pack_latents(x, 1, 16, 6, 8))
    assert torch.equal(unpack(pack(x), 6, 8), x)
    assert torch.equal(image_positions(6, 8, CPU), FluxPipeline._prepare_latent_image_ids(1, 3, 4, CPU, torch.float32))


def test_variants_and_settings_come_from_the_weights(dev, schnell):
    assert dev.info.distilled_guidance and dev.variant == "dev" and dev.prompts.max_length == 512
    assert not schnell.info.distilled_guidance and schnell.variant == "schnell" and schnell.prompts.max_length == 256
    assert (dev.info.recommended.steps, dev.info.recommended.cfg_scale) == (20, 1.0)
    assert (schnell.info.recommended.steps, schnell.info.recommended.cfg_scale) == (4, 1.0)
    assert dev.info.latent_channels == 16 and dev.info.size_multiple == 16
    assert dev.schedule.dynamic is not None and schnell.schedule.dynamic is None and schnell.schedule.shift == 1.0


def flux_pipeline(folder, model, pipeline_cls=None):
    """diffusers' pipeline over the studio model's own networks and tokenizers."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder / "scheduler"), local_files_only=True)
    pipe = (pipeline_cls or FluxPipeline)(
        scheduler=scheduler, vae=model.codec.vae, text_encoder=model.prompts.clip, text_encoder_2=model.prompts.t5,
        tokenizer=model.prompts.clip_tokenizer, tokenizer_2=model.prompts.t5_tokenizer, transformer=model.transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _pipeline_latents(folder, model, req, noise, pipeline_cls=None, **extra):
    """FluxPipeline on the same transformer, noise, prompt embeddings and unshifted sigmas; returns
    (final latent [1, 16, h, w], the pipeline scheduler's shifted flow times)."""
    pipe = flux_pipeline(folder, model, pipeline_cls)
    h, w = req.height // 8, req.width // 8
    cond, uncond = model.encode_prompt(req.prompt, req.negative_prompt, req.width, req.height)
    if req.cfg_scale > 1:
        extra.update(true_cfg_scale=req.cfg_scale, negative_prompt_embeds=uncond["context"],
                     negative_pooled_prompt_embeds=uncond["pooled"])
    out = pipe(prompt_embeds=cond["context"], pooled_prompt_embeds=cond["pooled"], height=req.height,
               width=req.width, num_inference_steps=req.steps, guidance_scale=req.distilled_cfg,
               sigmas=np.linspace(1.0, 1 / req.steps, req.steps), latents=pack(noise), output_type="latent",
               **extra).images
    return unpack(out, h, w), pipe.scheduler.sigmas[:-1]


@pytest.mark.parametrize("variant,kw", [("dev", {}), ("dev", {"cfg_scale": 2.5, "negative_prompt": "blurry"}),
                                        ("schnell", {"steps": 2})])
def test_euler_matches_flux_pipeline(folders, dev, schnell, variant, kw):
    model = dev if variant == "dev" else schnell
    runner, req = Runner(model), request(**kw)
    result = runner.run(req)
    history = runner._histories[result.run_id]
    ours, theirs = _pipeline_latents(folders[variant], model, req, history.noise)
    # the same shifted schedule: the pipeline computes mu from the image's token count, we from its size
    assert torch.allclose(sigma_to_flow_t(history.sigmas[:-1].double()).float(), theirs.float(), atol=1e-6)
    diff = float((torch.from_numpy(result.latent)[None] - ours).abs().max())
    print(f"flux {variant} {kw}: max |studio - FluxPipeline| = {diff:.2e}")
    assert diff < 1e-4


def test_prompt_encoding_matches_the_pipeline(folders, dev):
    pipe = flux_pipeline(folders["dev"], dev)
    embeds, pooled, text_ids = pipe.encode_prompt("a red fox", prompt_2=None, max_sequence_length=512)
    cond, _ = dev.encode_prompt("a red fox", "", 64, 64)
    assert torch.equal(cond["context"], embeds) and torch.equal(cond["pooled"], pooled)
    assert not text_ids.any()


def test_distilled_cfg_is_written_as_forge_does_and_read_back(dev, schnell):
    from studio.io.parameters import format_parameters, parse_parameters

    result = Runner(dev).run(request(distilled_cfg=4.5, steps=1))
    assert ("Distilled CFG Scale", "4.5") in result.infotext
    text = format_parameters(result.request, "flux1-dev", result.infotext)
    assert "CFG scale: 1, " in text and "Distilled CFG Scale: 4.5" in text
    assert parse_parameters(text).request.distilled_cfg == 4.5
    assert not any(k == "Distilled CFG Scale" for k, _ in Runner(schnell).run(request(steps=1)).infotext)


def test_distilled_guidance_reaches_the_network(dev):
    runner = Runner(dev)
    a = runner.run(request(distilled_cfg=3.5, steps=2)).latent
    b = runner.run(request(distilled_cfg=1.0, steps=2)).latent
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_runs_and_branches_exactly(dev, sampler):
    runner = Runner(dev)
    req = request(sampler=sampler, steps=3, cfg_scale=2.0, negative_prompt="ugly")
    straight = runner.run(req)
    assert np.isfinite(straight.latent).all() and straight.image.shape == (48, 64, 3)
    branched = runner.run(req, branch_from=(straight.run_id, 0))
    assert np.array_equal(branched.latent, straight.latent)


def test_img2img_starts_from_the_init_image(dev):
    runner = Runner(dev)
    init = np.zeros((48, 64, 3), np.uint8)
    init[:, 32:] = 255
    start = dev.encode_image(init)[0].numpy()
    result = runner.run(request(init_image=init, strength=0.5))
    plain = runner.run(request())
    assert result.steps_run == 2 and np.isfinite(result.latent).all()
    assert np.abs(result.latent - start).mean() < np.abs(plain.latent - start).mean()


def test_blend_inpainting_keeps_the_unmasked_area(dev):
    runner = Runner(dev)
    init = np.full((48, 64, 3), 200, np.uint8)
    mask = np.zeros((48, 64), np.float32)
    mask[:, :32] = 1.0
    result = runner.run(request(init_image=init, mask=mask, strength=1.0, mask_feather=0))
    assert np.array_equal(result.image[:, 40:], init[:, 40:])  # pasted back where nothing is painted
