import numpy as np
import pytest
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


def png_with(path, text, size=(8, 8)):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", size).save(path, pnginfo=info)
    return path


def written(path):
    return parse_parameters(read_parameters(path)).request


def test_params_from_takes_every_setting_from_the_file(tmp_path, capsys):
    src = png_with(tmp_path / "a1111.png", "green circle\nNegative prompt: red\nSteps: 7, Sampler: Euler, "
                   "Schedule type: Karras, CFG scale: 3, Seed: 2024961953, Size: 32x24, Clip skip: 1, Model: toy")
    out = tmp_path / "out.png"
    assert main(["generate", "--params-from", str(src), "--model", "toy", "--out", str(out), "--quiet"]) == 0
    r = written(out)
    assert (r.prompt, r.negative_prompt, r.steps, r.sampler, r.spacing) == ("green circle", "red", 7, "euler", "karras")
    assert (r.cfg_scale, r.seed, r.width, r.height) == (3.0, 2024961953, 32, 24)
    assert capsys.readouterr().err == ""  # nothing to adapt, nothing said


def test_flags_given_override_the_file_and_only_those(tmp_path):
    src = png_with(tmp_path / "src.png", "blue square\nSteps: 7, Sampler: Euler, CFG scale: 3, Seed: 11, "
                   "Size: 32x32, Denoising strength: 0.4")
    out = tmp_path / "out.png"
    assert main(["generate", "--params-from", str(src), "--model", "toy", "--steps", "4", "--cfg", "2",
                 "--prompt", "red square", "--out", str(out), "--quiet"]) == 0
    r = written(out)
    assert (r.prompt, r.steps, r.cfg_scale) == ("red square", 4, 2.0)
    assert (r.sampler, r.seed, r.width) == ("euler", 11, 32)


def test_settings_the_model_cannot_use_are_adapted_with_a_note(tmp_path, capsys):
    # The toy model draws 32x32 and has no CLIP: 512x512 and Clip skip 2 would be garbage or refused.
    src = png_with(tmp_path / "sd.png", "cat\nSteps: 3, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, "
                   "Size: 512x512, Clip skip: 2")
    out = tmp_path / "out.png"
    assert main(["generate", "--params-from", str(src), "--model", "toy", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["note: Size 512x512 is far from Toy shapes (built-in test model)'s 32x32: set to 32x32.",
                   "note: Clip skip 2 does not apply to Toy shapes (built-in test model) (it has no CLIP text "
                   "encoder): set to 1."]
    r = written(out)
    assert (r.width, r.height, r.clip_skip) == (32, 32, 1)
    src = png_with(tmp_path / "odd.png", "cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 42x42")
    assert main(["generate", "--params-from", str(src), "--model", "toy", "--out", str(out), "--quiet"]) == 0
    assert "Size 42x42 is not a multiple of 8 pixels" in capsys.readouterr().err and written(out).width == 40
    # Typed on the command line, a size is taken as given: the engine says why it cannot work.
    assert main(["generate", "--model", "toy", "--width", "42", "--out", str(out), "--quiet"]) == 2
    assert "width: must be a positive multiple of 8 pixels, got 42" in capsys.readouterr().err


def test_a_sampler_the_studio_lacks_is_refused_by_name_unless_one_is_given(tmp_path, capsys):
    src = png_with(tmp_path / "unipc.png", "cat\nSteps: 3, Sampler: UniPC, CFG scale: 7, Seed: 1, Size: 32x32")
    out = tmp_path / "out.png"
    assert main(["generate", "--params-from", str(src), "--model", "toy", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --params-from ") and "'UniPC' is not in this studio" in err
    assert "euler (Euler)" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert main(["generate", "--params-from", str(src), "--model", "toy", "--sampler", "heun", "--out", str(out),
                 "--quiet"]) == 0
    assert written(out).sampler == "heun" and capsys.readouterr().err == ""


def test_a_model_in_the_file_that_is_not_here_falls_back_to_the_default(tmp_path, capsys, monkeypatch):
    import studio.engine.models.registry as registry

    monkeypatch.setattr(registry, "default_model_key", lambda: "toy")
    src = png_with(tmp_path / "x.png", "cat\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 32x32, "
                   "Studio model: sd:/elsewhere/model.safetensors")
    out = tmp_path / "out.png"
    assert main(["generate", "--params-from", str(src), "--out", str(out), "--quiet"]) == 0
    assert "cannot be loaded here" in capsys.readouterr().err and written(out).model == "toy"


def truncated_png(path):
    png_with(path, "cat\nSteps: 3, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 32x32", size=(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.mark.parametrize(("make", "says"), [
    (lambda d: d / "missing.png", "no such file"),
    (lambda d: d, "a folder, not an image"),
    (lambda d: (d / "notes.png").write_text("just text") and d / "notes.png", "cannot read parameters from notes.png"),
    (lambda d: Image.new("RGB", (4, 4)).save(d / "plain.png") or d / "plain.png", "carries no generation parameters"),
    (lambda d: truncated_png(d / "cut.png"), "cut.png"),
    (lambda d: (d / "empty.png").write_bytes(b"") or d / "empty.png", "cannot read parameters from empty.png"),
])
def test_params_from_a_file_it_cannot_use_is_one_line_and_exit_2(tmp_path, capsys, make, says):
    path = make(tmp_path)
    assert main(["generate", "--params-from", str(path), "--model", "toy", "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --params-from {path}: ") and says in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
