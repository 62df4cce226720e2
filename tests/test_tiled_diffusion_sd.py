"""Tiled diffusion on tiny random Stable Diffusion models (SD 1, SDXL with its size conditioning, and an
inpainting UNet whose conditioning covers the latent)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.models.sd.detect import Detection  # noqa: E402
from studio.engine.models.sd.load import _tokenizers, assemble  # noqa: E402
from studio.engine.models.sd.model import Networks  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    built = {"sd1": build_random("sd1", seed=1), "sdxl": build_random("sdxl", seed=2),
             "inpaint": build_random("sd1", seed=3, inpainting=True)}
    out = {}
    for name, m in built.items():  # networks as built, without a round trip through files
        nets = Networks(m.unet, m.vae, m.text_encoders, _tokenizers(save_configs(m, root / name), m.family))
        out[name] = assemble(name, Detection(m.family, None), nets, m.scheduler_config, {}, torch.device("cpu"),
                             torch.float32)
    return out


def init_image(side: int) -> np.ndarray:
    ramp = np.linspace(30, 220, side)
    return np.stack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)), np.full((side, side), 120.0)],
                    -1).astype(np.uint8)


def request(side: int, **kw) -> GenerationRequest:
    base = dict(prompt="a lighthouse at dusk", negative_prompt="blurry", sampler="euler", steps=3, cfg_scale=5.0,
                seed=11, width=side, height=side, init_image=init_image(side), strength=0.6)
    return GenerationRequest(**{**base, **kw})


@pytest.mark.parametrize("name", ["sd1", "sdxl"])
def test_one_tile_covering_the_image_equals_the_untiled_run(models, name):
    runner = Runner(models[name])
    plain, tiled = runner.run(request(64)), runner.run(request(64, tile_size=64))
    assert np.array_equal(plain.latent, tiled.latent) and np.array_equal(plain.image, tiled.image)


def test_tiled_img2img_reproduces_with_the_same_seed(models):
    runner = Runner(models["sd1"])
    a, b = runner.run(request(96, tile_size=64)), runner.run(request(96, tile_size=64))
    assert np.array_equal(a.image, b.image) and a.image.shape == (96, 96, 3)
    assert not np.array_equal(a.latent, runner.run(request(96)).latent)


def test_sdxl_tiles_see_their_crop_and_size(models, monkeypatch):
    model = models["sdxl"]
    seen = []
    network = model._network

    def spy(x, t, cond):
        seen.append((tuple(x.shape[-2:]), tuple(cond["time_ids"][0].tolist())))
        return network(x, t, cond)

    monkeypatch.setattr(model, "_network", spy)
    model._denoiser.network = spy
    try:
        Runner(model).run(request(96, tile_size=64, steps=1, strength=1.0))
    finally:
        model._denoiser.network = network
    # 96 px = 12 latent cells, tiles of 8 sharing at least 2: two spans a side, at 0 and 4 cells.
    expected = {((8, 8), (96.0, 96.0, top, left, 64.0, 64.0)) for top in (0.0, 32.0) for left in (0.0, 32.0)}
    assert set(seen) == expected


def test_inpainting_unet_gets_its_mask_and_masked_image_per_tile(models):
    mask = np.zeros((96, 96), np.float32)
    mask[24:72, 30:80] = 1
    runner = Runner(models["inpaint"])
    a = runner.run(request(96, tile_size=64, mask=mask, strength=1.0, steps=2))
    b = runner.run(request(96, tile_size=64, mask=mask, strength=1.0, steps=2))
    assert np.array_equal(a.image, b.image)
    keep = mask == 0
    assert np.abs(a.image[keep].astype(int) - init_image(96)[keep]).max() == 0  # pasted back outside the mask
    assert torch.isfinite(torch.from_numpy(a.latent)).all()
