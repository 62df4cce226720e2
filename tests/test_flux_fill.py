"""Flux.1 Fill as an inpainting model: the masked image's latent and the 8x8 mask as extra inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from studio.engine.models.flow.flux import FILL_KEY, load_flux, pack, unpack  # noqa: E402
from studio.engine.models.flow.flux_fill import mask_to_channels  # noqa: E402
from studio.engine.models.flow.parts import ModelFiles  # noqa: E402
from studio.engine.models.flow.testing_flux import build_random_flux, save_all_in_one, save_diffusers  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

CPU = torch.device("cpu")
W, H = 64, 48


@pytest.fixture(scope="module")
def fill(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux-fill")
    random = build_random_flux("fill", seed=11)
    folder = save_diffusers(random, root / "fill")
    return folder, random, load_flux(ModelFiles("flux", folder), CPU, torch.float32)


def inputs():
    rng = np.random.default_rng(0)
    init = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    mask = np.zeros((H, W), np.float32)
    mask[8:40, 16:48] = 1.0
    return init, mask


def test_fill_is_an_inpainting_model_with_guidance_30(fill):
    _, _, model = fill
    assert model.variant == "fill" and model.info.inpainting and model.info.distilled_guidance
    assert model.info.recommended.distilled_cfg == 30.0


def test_mask_blocks_match_the_pipeline():
    from diffusers import FluxFillPipeline

    mask = (torch.rand(1, 1, 32, 48) > 0.5).float()
    ours = pack(mask_to_channels(mask, 8))
    pipe = SimpleNamespace(vae_scale_factor=8, vae=SimpleNamespace(config=SimpleNamespace(shift_factor=0,
                                                                                          scaling_factor=1)),
                           _pack_latents=FluxFillPipeline._pack_latents)
    theirs, _ = FluxFillPipeline.prepare_mask_latents(pipe, mask, torch.zeros(1, 16, 4, 6), 1, 16, 1, 32, 48,
                                                      torch.float32, CPU, None)
    assert torch.equal(ours, theirs)


def test_fill_matches_flux_fill_pipeline(fill):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline
    from PIL import Image

    folder, _, model = fill
    init, mask = inputs()
    req = GenerationRequest(prompt="a window", width=W, height=H, steps=4, seed=2, cfg_scale=1.0, sampler="euler",
                            spacing="trailing", init_image=init, mask=mask, mask_feather=0, strength=1.0,
                            distilled_cfg=30.0)
    runner = Runner(model)
    result = runner.run(req)
    noise = runner._histories[result.run_id].noise
    cond, _ = model.encode_prompt(req.prompt, "", W, H)

    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder / "scheduler"), local_files_only=True)
    pipe = FluxFillPipeline(scheduler=scheduler, vae=model.codec.vae, text_encoder=model.prompts.clip,
                            text_encoder_2=model.prompts.t5, tokenizer=model.prompts.clip_tokenizer,
                            tokenizer_2=model.prompts.t5_tokenizer, transformer=model.transformer)
    pipe.set_progress_bar_config(disable=True)
    vae = model.codec.vae
    # the pipeline samples the VAE's posterior; the studio takes its mean (reproducible): give it the mean
    vae.encode = lambda x, **kw: SimpleNamespace(latents=type(vae).encode(vae, x).latent_dist.mean)
    try:
        out = pipe(prompt_embeds=cond["context"], pooled_prompt_embeds=cond["pooled"], image=Image.fromarray(init),
                   mask_image=Image.fromarray((mask * 255).astype(np.uint8)), height=H, width=W,
                   num_inference_steps=4, guidance_scale=30.0, sigmas=np.linspace(1.0, 1 / 4, 4),
                   latents=pack(noise), strength=1.0, output_type="latent").images
    finally:
        del vae.encode
    diff = float((torch.from_numpy(result.latent)[None] - unpack(out, H // 8, W // 8)).abs().max())
    print(f"flux fill: max |studio - FluxFillPipeline| = {diff:.2e}")
    assert diff < 1e-4


def test_fill_sees_the_mask_and_keeps_the_rest(fill):
    _, _, model = fill
    init, mask = inputs()
    runner = Runner(model)
    base = dict(prompt="a window", width=W, height=H, steps=2, seed=2, cfg_scale=1.0, init_image=init,
                mask_feather=0, strength=1.0)
    a = runner.run(GenerationRequest(mask=mask, **base))
    other = np.zeros_like(mask)
    other[:, :8] = 1.0
    b = runner.run(GenerationRequest(mask=other, **base))
    assert not np.array_equal(a.latent, b.latent)  # the mask is an input, not only a blend
    assert np.array_equal(a.image[mask == 0], init[mask == 0])  # the known pixels are pasted back


def test_fill_from_an_all_in_one_checkpoint(fill, tmp_path):
    _, random, model = fill
    loaded = load_flux(ModelFiles("flux", save_all_in_one(random, tmp_path / "fill.safetensors")), CPU,
                       torch.float32)
    assert loaded.variant == "fill" and loaded.info.inpainting
    init, mask = inputs()
    cond = loaded.inpainting_concat(torch.from_numpy(mask)[None, None], torch.zeros(1, 3, H, W))[FILL_KEY]
    assert cond.shape == (1, 16 + 64, H // 8, W // 8)
