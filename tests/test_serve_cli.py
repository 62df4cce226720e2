"""python -m studio serve: what it refuses before starting anything, and a real start, URL and Ctrl+C."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from studio.cli import main

ROOT = Path(__file__).resolve().parents[1]


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


def test_serve_starts_prints_its_url_and_stops_on_ctrl_c():
    pytest.importorskip("ray", reason='ray[serve] is not installed: pip install "diffusion-studio[serve]"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own cluster, not the tests' one
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "studio", "serve", "--port", str(port), "--replicas", "1", "--token", "s3cret",
               "--default-model", "toy", "--address", "local"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(240, server.kill)  # a server that never says it is up fails the test, not the suite
    watchdog.start()
    try:
        line = server.stdout.readline()  # printed once the app is up
        assert line.startswith(f"serving on http://127.0.0.1:{port} (1 replica(s) on CPU, token required)"), line
        url = f"http://127.0.0.1:{port}/v1/health"
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": "Bearer s3cret"})) as r:
            assert json.load(r)["replicas"] == 1
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url)
        assert refused.value.code == 401
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=60) == 0
    finally:
        watchdog.cancel()
        if server.poll() is None:
            server.kill()
            server.wait()
