"""``python -m studio generate --server URL``: the PNG a local run writes (pixels and parameters), whatever comes
from where (flags, --params-from, --init and --mask), and a one-line message saying what to fix when the
server cannot be reached, refuses the token, or refuses a setting."""

from __future__ import annotations

import numpy as np
import pytest
from remote_net import free_port
from serve_cluster import TOKEN

from studio.cli import main
from studio.io.png import load_image, read_parameters, save_image

ARGS = ["generate", "--model", "toy", "--prompt", "a red circle", "--seed", "7", "--steps", "6", "--quiet"]


def _same_png(a, b) -> None:
    assert np.array_equal(load_image(a), load_image(b))
    assert read_parameters(a) == read_parameters(b)


def _remote(serve_url: str, *args: str) -> list[str]:
    return [*args, "--server", serve_url, "--token", TOKEN]


def test_a_run_on_the_server_writes_the_png_a_local_run_writes(serve_url, tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path / "local.png")]) == 0
    assert main(_remote(serve_url, *ARGS, "--out", str(tmp_path / "remote.png"))) == 0
    _same_png(tmp_path / "local.png", tmp_path / "remote.png")
    assert serve_url in capsys.readouterr().out
    # Every setting from the file, on the server: the same image again.
    out = tmp_path / "again.png"
    assert main(_remote(serve_url, "generate", "--params-from", str(tmp_path / "local.png"), "--quiet",
                        "--out", str(out))) == 0
    _same_png(tmp_path / "local.png", out)


def test_init_image_and_mask_travel_to_the_server(serve_url, tmp_path):
    init = np.zeros((32, 32, 3), np.uint8)
    init[:, :16] = (200, 40, 40)
    mask = np.zeros((32, 32, 3), np.uint8)
    mask[8:24, 8:24] = 255
    save_image(tmp_path / "init.png", init)
    save_image(tmp_path / "mask.png", mask)
    args = [*ARGS, "--init", str(tmp_path / "init.png"), "--mask", str(tmp_path / "mask.png"), "--strength", "0.8"]
    assert main([*args, "--out", str(tmp_path / "local.png")]) == 0
    assert main(_remote(serve_url, *args, "--out", str(tmp_path / "remote.png"))) == 0
    _same_png(tmp_path / "local.png", tmp_path / "remote.png")


def test_a_batch_on_the_server_writes_the_files_of_a_local_batch(serve_url, tmp_path):
    args = [*ARGS, "--batch-count", "2", "--steps", "3"]
    for folder in ("local", "remote"):
        (tmp_path / folder).mkdir()
    assert main([*args, "--out", str(tmp_path / "local" / "b.png")]) == 0
    assert main(_remote(serve_url, *args, "--out", str(tmp_path / "remote" / "b.png"))) == 0
    for name in ("b-7.png", "b-8.png"):
        _same_png(tmp_path / "local" / name, tmp_path / "remote" / name)


def test_progress_streams_as_a_local_run_prints_it(serve_url, tmp_path, capsys):
    args = [a for a in ARGS if a != "--quiet"]
    assert main(_remote(serve_url, *args, "--out", str(tmp_path / "remote.png"))) == 0
    assert "step 6/6" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "says"), [
    (["--token", "wrong"], "--token"),
    (["--model", "../../etc/passwd"], "models --server"),
    (["--steps", "0"], "--steps"),
])
def test_a_refusal_says_what_to_fix_without_a_traceback(serve_url, tmp_path, capsys, extra, says):
    args = _remote(serve_url, *ARGS, "--out", str(tmp_path / "x.png")) + extra
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_an_unreachable_server_is_named_in_one_line(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main([*ARGS, "--server", url, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the studio server at {url}") and err.count("\n") == 1


def test_files_on_this_computer_are_refused_with_a_server(tmp_path, capsys):
    assert main([*ARGS, "--server", "http://127.0.0.1:1", "--lora-dir", str(tmp_path), "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "--lora-dir" in capsys.readouterr().err


def test_models_on_a_server_lists_its_keys_with_the_default_marked(serve_url, capsys):
    assert main(["models", "--server", serve_url, "--token", TOKEN]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("toy") and line.endswith("(default)") for line in lines)
