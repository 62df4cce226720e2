"""A second ingress on the session's cluster (tests/serve_cluster.py), in front of the same engine replicas: a server
with two tokens, each with its own queue limit, and a model folder holding a few adapter files. Ray Serve runs it as
another application on the same cluster (no other cluster is started); it goes when the cluster does.

``second_ingress`` (registered in conftest.py) yields a SecondIngress: its URL, tokens and folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from serve_cluster import APP_NAME

ALICE, BOB = "alice-7f3a", "bob-91c2"  # alice may have 1 run queued or running, bob the server's 4
LORAS = ("pixel-art", "watercolour")
EMBEDDINGS = ("bad-hands",)


@dataclass(frozen=True)
class SecondIngress:
    url: str
    folder: Path  # the server's model folder: Lora/ and embeddings/ beside each other
    outside: Path  # a LoRA file outside it, which the server must never list nor open


@pytest.fixture(scope="session")
def second_ingress(serve_url, tmp_path_factory):
    from ray import serve

    from studio.serve.app import Gateway
    from studio.serve.options import ServerOptions

    root = tmp_path_factory.mktemp("second-ingress")
    folder = root / "models"
    for sub, names, suffix in (("Lora", LORAS, ".safetensors"), ("embeddings", EMBEDDINGS, ".pt")):
        (folder / sub).mkdir(parents=True)
        for name in names:
            (folder / sub / f"{name}{suffix}").write_bytes(b"listed by name, never read here")
    outside = root / "elsewhere" / "Lora" / "secret-style.safetensors"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"outside the server's folders")
    engine = serve.get_deployment_handle("Engine", app_name=APP_NAME)
    options = ServerOptions(client_tokens=((ALICE, 1), (BOB, 0)), default_model="toy", app_name=APP_NAME,
                            model_folders=(str(folder),))
    serve.run(Gateway.bind(engine, options.to_dict()), name="second", route_prefix="/second")
    yield SecondIngress(serve_url + "/second", folder, outside)
