"""One local Ray cluster running the studio's Serve application, for every serve test in a session.

``serve_url`` (registered in conftest.py) starts Ray (``num_cpus=2``), the app with the toy model as default on 2
CPU replicas with token TOKEN, on a free port; it yields the base URL and shuts both down at the end. Tests that
need Ray's own API (to kill a replica) import ray after asking for the fixture. Without ray[serve] installed the
tests that ask for it are skipped, saying what to install.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

TOKEN = "t0ken"
REPLICAS = 2
APP_NAME = "studio"
STARTUP_S = 120  # two replicas loading torch and the toy model on a busy 2-core machine


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


@pytest.fixture(scope="session")
def serve_url():
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        pytest.skip(f'ray[serve] is not installed ({exc}): pip install "diffusion-studio[serve]"')
    from studio.serve.app import build_app
    from studio.serve.options import ServerOptions

    root = str(Path(__file__).resolve().parents[1])  # the studio these tests test, in the replicas too
    env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
           "OMP_WAIT_POLICY": "PASSIVE", "DIFFUSION_STUDIO_TEST_MODELS": "1"}
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             object_store_memory=128 * 2**20, runtime_env={"env_vars": env}, log_to_driver=False)
    port = _free_port()
    options = ServerOptions(port=port, token=TOKEN, replicas=REPLICAS, default_model="toy", threads=1,
                            app_name=APP_NAME)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(options), name=APP_NAME, route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, REPLICAS)
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()
