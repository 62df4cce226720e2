"""One local Ray cluster running the studio's Serve application, for every serve test in a session.

``serve_server`` starts Ray (``num_cpus=2``) in this process, then ``python -m studio serve`` as a user starts it,
joining that cluster with ``--address``: the app with the toy model as default on 2 CPU replicas with token
TOKEN, on a free port. At the end it sends the command Ctrl+C and fails the session unless it exits 0, then
stops Ray. So the command's own end-to-end check (tests/test_serve_cli.py) shares the cluster every other serve
test uses instead of starting a second one (about 25 s of the suite).

``serve_url`` (registered in conftest.py) is that server's base URL. Tests that need Ray's own API (to kill a
replica) import ray after asking for it: this process is a driver of the cluster. Without ray[serve] installed
the tests that ask for it are skipped, saying what to install.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TOKEN = "t0ken"
REPLICAS = 2
UPSCALER = "tiny-2x"  # an ESRGAN file (RRDBNet, 2x) in the server's model folder, for upscales on the server
APP_NAME = "studio"  # the serve command's default app name
STARTUP_S = 120  # two replicas loading torch and the toy model on a busy 2-core machine
STOP_S = 60
ROOT = Path(__file__).resolve().parents[1]  # the studio these tests test, in the replicas too


@dataclass(frozen=True)
class ServeServer:
    url: str  # http://127.0.0.1:PORT
    first_line: str  # what the command printed once the app was up
    process: subprocess.Popen
    models: Path  # its --model-dir (ESRGAN/UPSCALER.pth)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, replicas: int) -> None:
    deadline, last = time.monotonic() + STARTUP_S, "no answer"
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url + "/v1/health", headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=5) as reply:
                health = json.load(reply)
            if health["replicas"] >= replicas:
                return
            last = f"{health['replicas']} replicas running"
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            last = str(exc)
        time.sleep(0.3)
    raise RuntimeError(f"the serve app did not become healthy in {STARTUP_S} s ({last})")


def _first_line(out: Path, err: Path, process: subprocess.Popen) -> str:
    """The command's first line of output (a file, not a pipe: Ray's log lines after it cannot fill and stall it)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        text = out.read_text()
        if "\n" in text:
            return text.split("\n", 1)[0]
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"python -m studio serve printed no URL in {STARTUP_S} s (exit {process.poll()}):\n"
                       f"{out.read_text()[-2000:]}\n{err.read_text()[-3000:]}")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in os.environ while Ray starts: its raylet passes them on to every worker, whichever job starts
    it (the serve command's replicas belong to that command's job, not to this process's)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def upscaler_file(models: Path) -> Path:
    """The server's upscaler, where A1111 keeps ESRGAN files: a tiny random RRDBNet in Real-ESRGAN's layout."""
    from studio.engine.upscalers.testing import save_rrdb

    return save_rrdb(models / "ESRGAN" / f"{UPSCALER}.pth", scale=2, filters=8, seed=3)


@pytest.fixture(scope="session")
def serve_server(tmp_path_factory) -> Iterator[ServeServer]:
    try:
        import ray
        import ray.serve  # noqa: F401
    except ImportError as exc:
        pytest.skip(f'ray[serve] is not installed ({exc}): pip install "diffusion-studio[serve]"')

    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "OMP_WAIT_POLICY": "PASSIVE", "DIFFUSION_STUDIO_TEST_MODELS": "1"}
    with _environment(env):
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 object_store_memory=128 * 2**20, log_to_driver=False)
    logs = tmp_path_factory.mktemp("serve-command")
    models = tmp_path_factory.mktemp("serve-models")
    upscaler_file(models)
    out, err = logs / "stdout.txt", logs / "stderr.txt"
    port = _free_port()
    command = [sys.executable, "-m", "studio", "serve", "--address", ray.get_runtime_context().gcs_address,
               "--port", str(port), "--replicas", str(REPLICAS), "--token", TOKEN, "--default-model", "toy",
               "--threads", "1", "--model-dir", str(models)]
    process = None
    try:
        with out.open("w") as stdout, err.open("w") as stderr:
            # os.environ after ray.init: it holds how this cluster authenticates its drivers.
            process = subprocess.Popen(command, cwd=ROOT, env=os.environ | env, stdout=stdout, stderr=stderr,
                                       stdin=subprocess.DEVNULL)
        line = _first_line(out, err, process)
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, REPLICAS)
        yield ServeServer(url, line, process, models)

        process.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            code = process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, (f"python -m studio serve did not exit 0 within {STOP_S} s of Ctrl+C (exit {code}):\n"
                           f"{err.read_text()[-3000:]}")
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        ray.shutdown()


@pytest.fixture(scope="session")
def serve_url(serve_server: ServeServer) -> str:
    return serve_server.url
