"""What the prompt panel asks a server besides runs: its adapter files by name (its own folders only, no paths) and
what a model makes of a prompt; and the window on a server using both. On the session's cluster, through the second
ingress whose model folder holds a few adapter files (tests/serve_ingress.py)."""

from __future__ import annotations

import json

import pytest
from serve_http import call, error_of
from serve_ingress import BOB, EMBEDDINGS, LORAS
from test_remote_window import TIMEOUT, make_studio

from studio.engine.models.registry import embedded_available
from studio.serve.prompt_help import MAX_PROMPT_CHARS
from studio.state.settings import Settings
from studio.worker.qt_asyncio import release_loop

CAR = "a car on a street at night"
needs_embedded = pytest.mark.skipif(not embedded_available(), reason="the embedded model's weights are not installed")


@pytest.fixture(autouse=True)
def _no_loop_left_running():
    yield
    release_loop()  # later tests may call asyncio.run() on this thread


@pytest.fixture(scope="module")
def local_description() -> str:
    from studio.engine.models.registry import load_model

    return load_model("embedded", "cpu").describe_prompt(CAR)


def test_adapters_are_listed_by_name_from_the_servers_folders_only(second_ingress):
    status, body = call(second_ingress.url, "/v1/adapters", token=BOB)
    assert status == 200
    assert json.loads(body) == {"lora": list(LORAS), "embedding": list(EMBEDDINGS), "controlnet": [], "upscaler": []}
    assert str(second_ingress.folder) not in body.decode() and "secret-style" not in body.decode()
    assert json.loads(call(second_ingress.url, "/v1/adapters?model=toy", token=BOB)[1])["lora"] == list(LORAS)
    for model in ("sd:" + str(second_ingress.outside), "../models", str(second_ingress.outside)):
        assert error_of(call(second_ingress.url, f"/v1/adapters?model={model}", token=BOB))[::2] == (404, "model")
    assert call(second_ingress.url, "/v1/adapters", token=None)[0] == 401


@needs_embedded
def test_a_prompt_is_described_as_this_computer_describes_it(second_ingress, local_description):
    url = second_ingress.url

    def describe(body):  # the first loads the embedded model on the ingress (a second on an idle machine)
        return call(url, "/v1/prompts/describe", body, token=BOB, timeout=300)

    status, body = describe({"model": "embedded", "prompt": CAR})
    assert status == 200 and json.loads(body) == {"description": local_description}
    assert "automobile" in local_description
    assert json.loads(describe({"model": "toy", "prompt": CAR})[1]) == {"description": ""}  # toy cannot say
    assert error_of(describe({"model": "/etc/passwd", "prompt": CAR}))[::2] == (404, "model")
    assert error_of(describe({"model": "toy", "prompt": 7}))[::2] == (400, "prompt")
    assert error_of(describe({"model": "toy", "prompt": "x" * (MAX_PROMPT_CHARS + 1)}))[::2] == (400, "prompt")
    assert call(url, "/v1/prompts/describe", {"model": "toy", "prompt": CAR}, token=None)[0] == 401


@needs_embedded
def test_the_window_on_a_server_lists_its_adapters_and_describes_the_prompt(qtbot, tmp_path, second_ingress,
                                                                          local_description):
    studio = make_studio(qtbot, tmp_path, Settings(engine="server", server_url=second_ingress.url, server_token=BOB))
    panel = studio.window.panel
    qtbot.waitUntil(lambda: [c.name for c in panel.adapters.loras] == list(LORAS), timeout=TIMEOUT)
    assert [c.name for c in panel.adapters.embeddings] == list(EMBEDDINGS)
    assert all("on the server" in c.path for c in panel.adapters.loras)  # the tooltip: no path on the server
    panel.prompt.setPlainText("red circle <lora:pixel-artt:1>")  # a misspelt name: the server's list is checked
    qtbot.waitUntil(lambda: "pixel-art" in panel.prompt_hint.text() and panel.prompt_hint.isVisible(),
                    timeout=TIMEOUT)

    panel.model.setCurrentIndex(panel.model.findData("embedded"))
    assert panel.values().model == "embedded"
    panel.prompt.setPlainText(CAR)
    qtbot.waitUntil(lambda: panel.prompt_hint.text() == local_description, timeout=TIMEOUT)
    studio.controller.shutdown()
