"""The emoji colouriser and emoji inpainting (Palette) in the engine and on the command line, on tiny random
weights beside the shipped embedded files; the grown network is the base model at step 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from studio import cli
from studio.engine.inpaint_models import inpainting_conditioning
from studio.engine.models import palette as palette_module
from studio.engine.models.embedded import embedded_weights_present, load_embedded_model
from studio.engine.models.palette import COLOURISE, INPAINT, PaletteModel, keep_luminance
from studio.engine.models.palette_inputs import CONCAT_CHANNELS, luminance
from studio.engine.models.registry import ModelLoadError, available_models, load_model
from studio.engine.request import GenerationRequest, RequestError
from studio.engine.runner import Runner
from studio.io.png import read_parameters

pytestmark = pytest.mark.skipif(not embedded_weights_present(), reason="embedded weights not in resources/")

from palette_files import tiny_palette_root  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny_palette_root(tmp_path_factory.mktemp("palette"), sr=True)


@pytest.fixture(scope="module")
def colouriser(root):
    return PaletteModel(COLOURISE, root)


@pytest.fixture(scope="module")
def inpainter(root):
    return PaletteModel(INPAINT, root)


def emoji_like(seed: int = 0, size: int = 64) -> np.ndarray:
    """A red disc with a yellow square on white: colours whose luma differ, edges at full resolution."""
    yy, xx = np.mgrid[:size, :size]
    image = np.full((size, size, 3), 255, np.uint8)
    image[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size * 0.4) ** 2] = (220, 30, 40)
    image[size // 3 : size // 2 + seed, size // 3 : size // 2] = (250, 210, 20)
    return image


def grey(image: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(Image.fromarray(image).convert("L"))[..., None], 3, axis=2)


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def request(**kw) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "", "steps": 3, "seed": 1, "width": 64, "height": 64, "cfg_scale": 2.0,
                                **kw})


def test_both_tasks_describe_themselves_as_inpainting_models_at_64_px(colouriser, inpainter):
    for model in (colouriser, inpainter):
        assert model.info.family == "palette" and model.info.inpainting
        assert model.info.default_size == (64, 64) and model.info.latent_scale == 2
        assert model.info.recommended.strength == 1.0 and not model.info.has_classifier
    assert "colouriser" in colouriser.info.name and "inpainting" in inpainter.info.name


def test_the_colouriser_reads_the_luminance_and_paints_everything(colouriser):
    image = emoji_like()
    concat = inpainting_conditioning(colouriser, request(init_image=image))["concat"]
    assert concat.shape == (1, CONCAT_CHANNELS, 32, 32)
    unit = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    torch.testing.assert_close(concat[:, 4:], luminance(F.avg_pool2d(unit, 2)))
    assert (concat[:, :3] == 0).all() and (concat[:, 3] == 1).all()
    # a grey picture and the colour one it came from read the same (to the rounding of grey's 8 bits)
    from_grey = inpainting_conditioning(colouriser, request(init_image=grey(image)))["concat"]
    torch.testing.assert_close(from_grey, concat, atol=2 / 127.5, rtol=0)


def test_inpainting_reads_the_known_part_and_a_hole_that_covers_the_mask(inpainter):
    image, mask = emoji_like(), np.zeros((64, 64), np.float32)
    mask[10:21, 30:45] = 1  # odd edges: a network pixel half inside is painted
    concat = inpainting_conditioning(inpainter, request(init_image=image, mask=mask))["concat"]
    hole = concat[0, 3]
    assert hole[5:11, 15:23].eq(1).all() and hole.sum() == 6 * 8
    unit = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    torch.testing.assert_close(concat[:, :3], F.avg_pool2d(unit, 2) * (1 - hole))
    assert (concat[:, 4] == 0).all()
    empty = inpainting_conditioning(inpainter, request())["concat"]  # no picture: all of it to paint
    assert (empty[:, 3] == 1).all() and (empty[:, :3] == 0).all()


def test_colourising_keeps_the_grey_pictures_own_luminance_at_64_px(colouriser):
    source = grey(emoji_like())
    result = Runner(colouriser).run(request(init_image=source, strength=1.0))
    assert result.image.shape == (64, 64, 3)
    assert np.abs(luma(result.image) - luma(source)).max() <= 0.5 + 1e-3  # the rounding to 8 bits
    assert np.abs(result.image.astype(int) - source).max() > 10  # random weights: some colour, not grey


def test_inpainting_repaints_the_hole_and_keeps_the_rest(inpainter):
    image, mask = emoji_like(), np.zeros((64, 64), np.float32)
    mask[16:40, 16:40] = 1
    result = Runner(inpainter).run(request(init_image=image, mask=mask, mask_feather=0))
    assert result.image.shape == (64, 64, 3)
    assert np.array_equal(result.image[mask == 0], image[mask == 0])
    assert not np.array_equal(result.image[mask == 1], image[mask == 1])


def test_colourising_without_a_picture_says_what_to_give(colouriser):
    with pytest.raises(RequestError, match="grey picture") as caught:
        Runner(colouriser).run(request())
    assert caught.value.field == "init_image"


def test_keep_luminance_keeps_the_colour_and_takes_the_detail():
    rng = np.random.default_rng(0)
    chroma = lambda im: im.astype(np.float32) - luma(im)[..., None]  # noqa: E731
    colour = rng.integers(90, 165, (8, 8, 3), dtype=np.uint8)
    detail = rng.integers(90, 165, (8, 8, 3), dtype=np.uint8)
    out = keep_luminance(colour, detail)
    assert np.abs(luma(out) - luma(detail)).max() <= 0.5 + 1e-3
    assert np.abs(chroma(out) - chroma(colour)).max() <= 1.0  # mid tones: all the colour fits
    red = np.full((1, 1, 3), (220, 30, 40), np.uint8)
    on_white = keep_luminance(red, np.full((1, 1, 3), 255, np.uint8))
    assert on_white.tolist() == [[[255, 255, 255]]]  # white holds no colour: the luma wins
    on_light = keep_luminance(red, np.full((1, 1, 3), 200, np.uint8))
    assert abs(luma(on_light)[0, 0] - 200) <= 0.5 + 1e-3 and on_light[0, 0, 0] > on_light[0, 0, 1]  # still red


def test_a_palette_grown_from_the_shipped_base_is_the_base_at_step_0(tmp_path):
    """The training's warm start on the real base: the same denoised picture, whatever the known image."""
    from studio.engine.models.embedded import RESOURCE_DIR
    from studio.engine.models.unet import UNet
    from studio.train.checkpoint import export_weights
    from studio.train.palette import palette_config, warm_start_palette

    base_file = RESOURCE_DIR / "base.safetensors"
    grown = UNet(palette_config(base_file))
    warm_start_palette(grown, base_file)
    root = tiny_palette_root(tmp_path / "grown")
    export_weights(grown.state_dict(), root / "palette.safetensors", torch.float16,
                   {"kind": "palette", "config": grown.config.to_dict()})
    palette, base = PaletteModel(INPAINT, root), load_embedded_model()
    g = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(1, 3, 32, 32, generator=g) * 3, torch.tensor([3.0])
    cond, _ = base.encode_prompt("", "", 64, 64)
    known = {"concat": torch.randn(1, CONCAT_CHANNELS, 32, 32, generator=g)}
    with torch.no_grad():
        want = base.denoiser()(x, sigma, cond)
        got = palette.denoiser()(x, sigma, {**cond, **known})
    assert want.abs().mean() > 0.05
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_the_models_are_listed_and_load_only_when_the_weights_are_installed(root, tmp_path, monkeypatch):
    monkeypatch.setattr(palette_module, "RESOURCE_DIR", root)
    keys = [e.key for e in available_models()]
    assert {"embedded", "emoji-colouriser", "emoji-inpainting"} <= set(keys)
    assert load_model("emoji-colouriser").info.name.startswith("Emoji colouriser")
    monkeypatch.setattr(palette_module, "RESOURCE_DIR", tmp_path / "empty")
    keys = [e.key for e in available_models()]
    assert "embedded" in keys and "emoji-colouriser" not in keys  # the base model is there without them
    with pytest.raises(ModelLoadError, match="python -m studio.train palette"):
        load_model("emoji-colouriser")
    damaged = tmp_path / "damaged"
    tiny_palette_root(damaged)
    (damaged / "palette.safetensors").write_bytes(b"not a safetensors file")
    monkeypatch.setattr(palette_module, "RESOURCE_DIR", damaged)
    with pytest.raises(ModelLoadError, match="damaged or not a safetensors file"):
        load_model("emoji-inpainting")
    assert load_embedded_model().info.family == "embedded"


def test_the_command_line_colours_a_grey_png(root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(palette_module, "RESOURCE_DIR", root)
    source = grey(emoji_like())
    Image.fromarray(source).save(tmp_path / "grey.png")
    out = tmp_path / "colour.png"
    code = cli.main(["generate", "--model", "emoji-colouriser", "--init", str(tmp_path / "grey.png"),
                     "--steps", "2", "--seed", "3", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (64, 64, 3) and np.abs(luma(image) - luma(source)).max() <= 0.5 + 1e-3
    parameters = read_parameters(out)
    assert "Denoising strength: 1" in parameters and "CFG scale: 2" in parameters  # its recommended settings
    assert cli.main(["generate", "--model", "emoji-colouriser", "--steps", "2", "--out", str(out)]) == 2
    assert "grey picture" in capsys.readouterr().err


def test_the_samples_script_shows_held_out_emoji(root, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "palette_samples", Path(__file__).resolve().parents[1] / "scripts" / "palette_samples.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(0)
    n = 12  # groups 0 and 10 are held out
    np.savez(tmp_path / "data.npz", images64=rng.integers(0, 255, (n, 64, 64, 3), dtype=np.uint8),
             group=np.arange(n), name=np.array([f"emoji {i}" for i in range(n)]))
    script.main(["--data", str(tmp_path / "data.npz"), "--out", str(tmp_path / "samples.png"), "--weights",
                 str(root / "palette.safetensors"), "--rows", "2", "--seeds", "1", "--steps", "2", "--scale", "1"])
    out = capsys.readouterr().out
    assert "rows = emoji 0, emoji 10" in out and "PSNR colourised" in out
    picture = Image.open(tmp_path / "samples.png")
    assert picture.height > 2 * 2 * 64 and picture.width > 3 * 64  # two panels of two rows, three columns


def test_the_command_line_inpaints_a_masked_png(root, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(palette_module, "RESOURCE_DIR", root)
    picture, mask = emoji_like(), np.zeros((64, 64), np.uint8)
    mask[20:44, 8:30] = 255
    Image.fromarray(picture).save(tmp_path / "picture.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "filled.png"
    code = cli.main(["generate", "--model", "emoji-inpainting", "--init", str(tmp_path / "picture.png"), "--mask",
                     str(tmp_path / "mask.png"), "--feather", "0", "--steps", "2", "--seed", "3", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    image = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(image[mask == 0], picture[mask == 0])
    assert not np.array_equal(image[mask > 0], picture[mask > 0])
    assert "Denoising strength: 1" in read_parameters(out)


def test_a_server_describes_the_strength_a_model_needs_to_the_command_line_and_the_window(colouriser):
    """The remote command line and window read a model's advice from GET /v1/models/{key}: strength too."""
    from studio.serve.remote_cli import model_from_json
    from studio.serve.replica import model_json
    from studio.worker.remote_client import model_choice

    described = model_json("emoji-colouriser", colouriser.info)
    assert cli.recommended_settings(model_from_json(described).info)["strength"] == 1.0
    assert model_choice(described).recommended.strength == 1.0
    older = {**described, "recommended": {"steps": 20, "cfg_scale": 3.0}}  # a server from before
    assert "strength" not in cli.recommended_settings(model_from_json(older).info)
