"""python -m studio serve: what it refuses before starting anything, and a real start, URL and Ctrl+C."""

import sys

from studio.cli import main


def test_a_public_host_without_a_token_is_refused(capsys):
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--token" in err and "127.0.0.1" in err and "Traceback" not in err


def test_without_ray_it_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as on an install without the extra
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "diffusion-studio[serve]"' in err and "Traceback" not in err


def test_bad_numbers_are_refused(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
    assert main(["serve", "--replicas", "0"]) == 2
    assert "--replicas 0" in capsys.readouterr().err
