"""Upscaler models: found where A1111 and ComfyUI keep them, loaded safely, run in tiles without seams."""

import importlib.util
import os
import pickle

import numpy as np
import pytest
import torch

from studio.engine.models.errors import ModelLoadError
from studio.engine.models.sd.adapter_files import AdapterLibrary
from studio.engine.request import RequestError
from studio.engine.upscalers import UpscalerNotFound, upscale_image
from studio.engine.upscalers.testing import save_rrdb
from studio.engine.upscalers.tiles import fitted_spans, run_tiled

if importlib.util.find_spec("spandrel") is None:  # not importorskip: spandrel needs our torchvision stand-in
    pytest.skip("spandrel is not installed (scripts/setup_env.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    """A webui and a ComfyUI install with tiny ESRGAN files (.pth wrapped as Real-ESRGAN ships them, .safetensors)."""
    root = tmp_path_factory.mktemp("upscalers")
    webui, comfy = root / "webui" / "models", root / "ComfyUI" / "models"
    (webui / "Stable-diffusion").mkdir(parents=True)
    (comfy / "checkpoints").mkdir(parents=True)
    save_rrdb(webui / "ESRGAN" / "TinyESRGAN_x4.pth", seed=1)
    save_rrdb(webui / "RealESRGAN" / "TinyReal_x2.safetensors", scale=2, seed=2)
    save_rrdb(comfy / "upscale_models" / "TinyComfy_x4.safetensors", seed=1)
    library = AdapterLibrary((webui / "Stable-diffusion", comfy / "checkpoints"), include_defaults=False)
    return library, webui, comfy


def gradient(height=40, width=96):
    row = np.linspace(0, 255, width).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)


def test_files_are_found_in_the_a1111_and_comfyui_folders(disk):
    library, _, _ = disk
    assert [a.name for a in library.list("upscaler")] == ["TinyComfy_x4", "TinyESRGAN_x4", "TinyReal_x2"]


def test_name_and_path_give_the_same_pixels_and_pth_equals_safetensors(disk):
    library, webui, comfy = disk
    image = gradient(24, 32)
    by_name = upscale_image(image, 4, "tinyesrgan_x4", library=library)
    by_path = upscale_image(image, 4, str(webui / "ESRGAN" / "TinyESRGAN_x4.pth"))
    same_weights = upscale_image(image, 4, "TinyComfy_x4", library=library)
    assert by_name.shape == (96, 128, 3) and by_name.dtype == np.uint8
    assert np.array_equal(by_name, by_path) and np.array_equal(by_name, same_weights)
    # It is the network, not Lanczos: the random weights add texture a resampling never would.
    assert np.abs(by_name.astype(int) - upscale_image(image, 4, "lanczos")).mean() > 5


def test_a_2x_network_and_other_factors(disk):
    library, _, _ = disk
    image = gradient(10, 12)
    assert upscale_image(image, 2, "TinyReal_x2", library=library).shape == (20, 24, 3)
    seen = []
    out = upscale_image(image, 3, "TinyReal_x2", library=library, on_progress=lambda d, t: seen.append((d, t)))
    assert out.shape == (30, 36, 3)
    assert seen == [(1, 2), (2, 2)]  # 2x twice, then Lanczos down to 3x
    assert upscale_image(image, 1.5, "TinyESRGAN_x4", library=library).shape == (15, 18, 3)


def test_an_unknown_name_names_the_closest(disk):
    library, _, _ = disk
    with pytest.raises(UpscalerNotFound) as err:
        upscale_image(gradient(8, 8), 4, "TinyESRGAN_x8", library=library)
    assert "closest: TinyESRGAN_x4" in str(err.value) and err.value.field == "upscaler"
    with pytest.raises(UpscalerNotFound, match="Lanczos"):
        upscale_image(gradient(8, 8), 4, "lanczo", library=library)
    with pytest.raises(UpscalerNotFound, match="no such upscaler file: /no/such/4x.pth"):
        upscale_image(gradient(8, 8), 4, "/no/such/4x.pth", library=library)
    # The file's name with its suffix finds it too.
    assert upscale_image(gradient(4, 4), 4, "tinyesrgan_x4.PTH", library=library).shape == (16, 16, 3)
    empty = AdapterLibrary((), include_defaults=False)
    with pytest.raises(UpscalerNotFound, match="models/ESRGAN"):
        upscale_image(gradient(8, 8), 4, "4x-UltraSharp", library=empty)


def test_lanczos_needs_no_file_and_bad_values_are_refused():
    assert upscale_image(gradient(8, 10), 2.5, "Lanczos").shape == (20, 25, 3)
    for scale in (0, -1, 17, float("nan")):
        with pytest.raises(RequestError, match="upscale factor"):
            upscale_image(gradient(8, 8), scale)


def test_bad_tile_values_are_refused(disk):
    library, _, _ = disk
    with pytest.raises(RequestError, match="at least 32"):
        upscale_image(gradient(8, 8), 4, "TinyESRGAN_x4", library=library, tile=8)
    with pytest.raises(RequestError, match="overlap"):
        upscale_image(gradient(8, 8), 4, "TinyESRGAN_x4", library=library, tile=64, overlap=40)


def test_a_flat_colour_stays_flat_across_tiles(disk):
    library, _, _ = disk
    flat = np.empty((70, 90, 3), np.uint8)
    flat[:] = (200, 60, 120)
    tiles = []
    out = upscale_image(flat, 4, "TinyESRGAN_x4", library=library, tile=32, overlap=16,
                        on_progress=lambda d, t: tiles.append(t))
    assert tiles[-1] >= 9  # many tiles, many seams
    spread = out.reshape(-1, 3).max(0).astype(int) - out.reshape(-1, 3).min(0)
    assert spread.max() <= 1, spread


def column_steps(image):
    return np.abs(np.diff(image.astype(float).mean(axis=(0, 2))))


def worst_seam_ratio(out, seams, scale=4, reach=3):
    """The largest column step at a seam over the largest step elsewhere."""
    steps = column_steps(out)
    near = np.zeros(len(steps), bool)
    for seam in seams:
        near[max(0, seam * scale - reach):seam * scale + reach] = True
    return steps[near].max() / steps[~near].max()


def test_a_gradient_shows_no_seam(disk):
    library, _, _ = disk
    image = gradient(40, 96)
    tiled = upscale_image(image, 4, "TinyESRGAN_x4", library=library, tile=32, overlap=16)
    whole = upscale_image(image, 4, "TinyESRGAN_x4", library=library, tile=0, overlap=16)
    # Tile edges in input pixels (the image is padded by overlap // 4 = 4 on each side).
    seams = sorted({edge - 4 for span in fitted_spans(96 + 8, 32, 16) for edge in span if 0 < edge < 104})
    assert len(seams) >= 8
    assert worst_seam_ratio(tiled, seams) <= 1.05
    assert np.abs(tiled.astype(int) - whole).max() <= 1
    # The same check catches tiles pasted without overlap or blending.
    hard = upscale_image(image, 4, "TinyESRGAN_x4", library=library, tile=32, overlap=0)
    assert worst_seam_ratio(hard, [edge for span in fitted_spans(96, 32, 0) for edge in span if 0 < edge < 96]) > 1.3


def test_the_network_never_sees_more_than_a_tile():
    sizes = []

    def network(x):
        sizes.append(tuple(x.shape[-2:]))
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    image = torch.rand(1, 3, 150, 230, generator=torch.Generator().manual_seed(0))
    out = run_tiled(image, network, 2, 64, 16)
    assert out.shape == (1, 3, 300, 460)
    assert max(max(s) for s in sizes) <= 64 and len(sizes) == 3 * 5  # 158 x 238 padded, stride 48
    # Nearest-neighbour tiles blend back into exactly the nearest-neighbour image.
    assert torch.allclose(out, torch.nn.functional.interpolate(image, scale_factor=2), atol=1e-6)


def test_cpu_runs_in_fp32(disk):
    from studio.engine.upscalers.model_file import load_upscaler

    _, webui, _ = disk
    model = load_upscaler(webui / "ESRGAN" / "TinyESRGAN_x4.pth", torch.device("cpu"))
    assert model.dtype == torch.float32 and model.info.architecture == "ESRGAN" and model.scale == 4
    assert "8nf" in model.info.tags and "1nb" in model.info.tags


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_files_name_the_file_and_what_is_wrong(tmp_path):
    good = save_rrdb(tmp_path / "good.safetensors")
    data = good.read_bytes()
    cases = {
        "truncated.safetensors": (data[: len(data) // 2], "truncated"),
        "junk.pth": (b"this is not a model" * 50, "could not be read"),
        "truncated.pth": (None, "could not be read"),
        "code.pth": (None, "refused: it asks to run"),
        "code_raw.pth": (pickle.dumps({"params_ema": RunsCode()}), "refused"),
        "unrelated.safetensors": (None, "not an upscaler model"),
        "empty.pth": (None, "holds no weights"),
    }
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "whole.pth")
    cases["truncated.pth"] = ((tmp_path / "whole.pth").read_bytes()[:300], cases["truncated.pth"][1])
    from safetensors.torch import save_file

    save_file({"encoder.layer.0.weight": torch.randn(16, 16), "head.bias": torch.randn(16)},
              str(tmp_path / "unrelated.safetensors"))
    torch.save({"note": "no tensors"}, tmp_path / "empty.pth")
    torch.save({"params_ema": RunsCode()}, tmp_path / "code.pth")
    for name, (content, message) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ModelLoadError) as err:
            upscale_image(gradient(8, 8), 4, str(path))
        assert name in str(err.value) and message in str(err.value), str(err.value)


def test_without_spandrel_the_message_says_what_to_install(monkeypatch, disk):
    import sys

    from studio.engine.upscalers import _loaded, spandrel_import

    library, _, _ = disk
    monkeypatch.setattr(spandrel_import, "_spandrel", None)
    monkeypatch.setitem(sys.modules, "spandrel", None)  # an import of it fails
    _loaded.clear()
    with pytest.raises(ModelLoadError, match="pip install --no-deps spandrel"):
        upscale_image(gradient(8, 8), 4, "TinyESRGAN_x4", library=library)
    assert upscale_image(gradient(8, 8), 2, "lanczos").shape == (16, 16, 3)
