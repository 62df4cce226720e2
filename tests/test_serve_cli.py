"""python -m studio serve: what it refuses before starting anything, and a real start, URL, token and Ctrl+C."""

import json
import sys
import urllib.error
import urllib.request

import pytest
from serve_cluster import REPLICAS, TOKEN

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


def test_serve_prints_its_url_and_answers_only_with_its_token(serve_server):
    """The session's server is this command (tests/serve_cluster.py): started as a user starts it, joining the
    session's Ray cluster with --address. Its Ctrl+C is checked where the session stops it: the fixture fails
    unless the command exits 0 within a minute of it."""
    port = serve_server.url.rsplit(":", 1)[1]
    assert serve_server.first_line.startswith(
        f"serving on http://127.0.0.1:{port} ({REPLICAS} replica(s) on CPU, token required)"), serve_server.first_line
    url = serve_server.url + "/v1/health"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})) as r:
        assert json.load(r)["replicas"] == REPLICAS
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    assert refused.value.code == 401
    assert serve_server.process.poll() is None  # still serving
