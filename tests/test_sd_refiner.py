"""The SDXL refiner: detected, loaded beside an SDXL base, and switched to part-way through one run.

Tiny random SDXL base and refiner networks are built here, saved as diffusers folders and as
original-layout single files, and run through the studio's Runner; diffusers' base + refiner
"ensemble of experts" (denoising_end / denoising_start) is the reference.
"""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
import torch  # noqa: E402

from studio.engine.models.sd.adapter_files import AdapterLibrary  # noqa: E402
from studio.engine.models.sd.detect import detect_keys  # noqa: E402
from studio.engine.models.sd.discovery import scan  # noqa: E402
from studio.engine.models.sd.load import load_sd_model  # noqa: E402
from studio.engine.models.sd.safety import read_safetensors_header  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs, save_diffusers, save_single_file  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
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
