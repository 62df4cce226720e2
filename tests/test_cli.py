import numpy as np
from PIL import Image

from studio.cli import main
from studio.io.parameters import parse_parameters
from studio.io.png import read_parameters


def test_generate_writes_png_with_parameters(tmp_path, capsys):
    out = tmp_path / "out.png"
    code = main(["generate", "--model", "toy", "--prompt", "blue square", "--seed", "3", "--steps", "8",
                 "--sampler", "euler", "--karras", "--out", str(out), "--quiet"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    r = parse_parameters(read_parameters(out)).request
    assert (r.prompt, r.seed, r.steps, r.sampler, r.spacing, r.model) == ("blue square", 3, 8, "euler", "karras", "toy")
    again = tmp_path / "again.png"
    assert main(["generate", "--params-from", str(out), "--steps", "8", "--sampler", "euler", "--karras",
                 "--seed", "3", "--model", "toy", "--out", str(again), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_inpaint_from_files(tmp_path):
    init = np.zeros((32, 32, 3), np.uint8)
    init[:] = (0, 200, 0)
    mask = np.zeros((32, 32), np.uint8)
    mask[:, 16:] = 255
    Image.fromarray(init).save(tmp_path / "init.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "inpainted.png"
    assert main(["generate", "--model", "toy", "--prompt", "red circle", "--init", str(tmp_path / "init.png"),
                 "--mask", str(tmp_path / "mask.png"), "--seed", "1", "--out", str(out), "--quiet"]) == 0
    img = np.asarray(Image.open(out))
    assert np.array_equal(img[:, :16], init[:, :16]) and not np.array_equal(img[:, 16:], init[:, 16:])


def test_user_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["generate", "--model", "toy", "--steps", "0", "--out", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip() == "error: steps: must be a whole number from 1 to 1000, got 0"
    assert main(["generate", "--model", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["generate", "--model", "toy", "--init", str(tmp_path / "missing.png")]) == 2
    assert "missing.png does not exist" in capsys.readouterr().err
