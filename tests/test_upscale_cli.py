"""``python -m studio upscale``: Lanczos or an upscaler file, the parameters kept, A1111's postprocessing added."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.engine.upscalers.testing import save_rrdb
from studio.io.png import read_parameters, save_image

needs_spandrel = pytest.mark.skipif(importlib.util.find_spec("spandrel") is None, reason="spandrel not installed")
PARAMETERS = "a red apple\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 24x16"


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(0)
    return save_image(tmp_path / "photo.png", rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), PARAMETERS)


def text_chunks(path):
    with Image.open(path) as img:
        return dict(img.text)


def test_lanczos_keeps_the_parameters_and_adds_the_postprocessing_text(photo, tmp_path, capsys):
    out = tmp_path / "big.png"
    assert main(["upscale", str(photo), "--scale", "2.5", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert Image.open(out).size == (60, 40)
    chunks = text_chunks(out)
    assert read_parameters(out) == PARAMETERS
    assert chunks["postprocessing"] == "Postprocess upscale by: 2.5, Postprocess upscaler: Lanczos"


@needs_spandrel
def test_a_model_by_name_from_upscaler_dir_and_by_path(photo, tmp_path):
    model = save_rrdb(tmp_path / "mine" / "4x-Tiny.pth")
    by_name, by_path = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["upscale", str(photo), "--upscaler", "4x-tiny", "--upscaler-dir", str(model.parent),
                 "--tile", "32", "--out", str(by_name), "--quiet", "--device", "cpu"]) == 0
    assert main(["upscale", str(photo), "--upscaler", str(model), "--scale", "4", "--tile", "32",
                 "--out", str(by_path), "--quiet"]) == 0
    a, b = np.asarray(Image.open(by_name)), np.asarray(Image.open(by_path))
    assert a.shape == (64, 96, 3) and np.array_equal(a, b)
    assert text_chunks(by_name)["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: 4x-Tiny"
    assert read_parameters(by_name) == PARAMETERS


@pytest.mark.parametrize("args, message", [
    (["--upscaler", "4x-UltraSharpp"], "error: upscaler: no upscaler named '4x-UltraSharpp'"),
    (["--scale", "0"], "error: scale: the upscale factor takes more than 0 up to 16, not 0.0"),
    (["--scale", "16", "--upscaler", "lanczos"], None),
    (["--out", "x.gif"], "error: --out x.gif: use a .png, .jpg or .webp file name"),
    (["--upscaler-dir", "/no/such/dir"], "error: --upscaler-dir /no/such/dir: no such folder"),
])
def test_mistakes_are_one_line_and_exit_2(photo, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code = main(["upscale", str(photo), *args])
    err = capsys.readouterr().err.strip()
    if message is None:  # 16x of 24x16 is fine: a control that the others fail for their own reason
        assert code == 0
        return
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(message), err


def test_a_missing_or_broken_input_and_a_bad_model_file(tmp_path, capsys, photo):
    assert main(["upscale", str(tmp_path / "nope.png")]) == 2
    assert "nope.png does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02junk" * 10)
    assert main(["upscale", str(photo), "--upscaler", str(junk), "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "junk.pth" in err and not (tmp_path / "o.png").exists()
