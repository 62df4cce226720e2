"""The asyncio client of a studio server (studio/serve/client.py): what it makes of answers a real server gives
rarely or never (an HTML page from a proxy, a stream cut mid-run, a refused connection), against small aiohttp
apps of our own; the real server's runs are in test_remote_server.py."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402
from remote_net import ThreadServer, free_port  # noqa: E402

from studio.engine.request import GenerationRequest  # noqa: E402
from studio.serve import wire  # noqa: E402
from studio.serve.client import Branch, ServerError, ServerUnreachable, StudioServer, run_payload, server_url  # noqa: E402

PREVIEW = np.full((4, 4, 3), 200, np.uint8)


def _fake_app(cut_after: int | None = None, error_event: dict | None = None) -> tuple[web.Application, dict]:
    seen: dict = {}

    async def health(request):
        return web.json_response({"version": "x", "replicas": 1, "device": "cpu"})

    async def models(request):
        if request.headers.get("Authorization") != "Bearer right":
            return web.json_response({"error": "wrong or missing token", "field": None}, status=401)
        return web.json_response({"models": [{"key": "toy", "label": "Toy", "family": "toy"}], "default": "toy"})

    async def runs(request):
        seen["payload"] = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        events = [{"type": "started", "run": "r1", "replica": "a"}]
        events += [{"type": "step", "index": i, "total": 3, "sigma": 1.0, "elapsed": 0.1,
                    "preview": wire.png_b64(PREVIEW)} for i in range(3)]
        events.append(error_event or {"type": "result", "run": "r1", "image": wire.png_b64(PREVIEW),
                                      "parameters": "p", "steps_run": 3, "elapsed": 0.3, "parent": None})
        for i, event in enumerate(events):
            if cut_after is not None and i == cut_after:
                request.transport.abort()  # the server went away mid-run
                return response
            line = wire.event_line(event)
            await response.write(line[:7])  # a line in two pieces: the client joins them
            await response.write(line[7:])
        return response

    async def proxy_page(request):
        return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/runs", runs)
    app.router.add_get("/v1/runs/{run}/state", proxy_page)
    return app, seen


@pytest.fixture
def fake():
    servers = []

    def start(**kwargs):
        app, seen = _fake_app(**kwargs)
        server = ThreadServer(lambda: app)
        server.seen = seen
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


async def _collect(server: StudioServer, payload: dict) -> list[dict]:
    events = []
    async with server:
        async for event in server.run(payload):
            events.append(event)
    return events


def test_a_run_streams_its_events_with_images_decoded(fake):
    server = fake()
    request = GenerationRequest(prompt="a", seed=3, init_image=np.zeros((8, 8, 3), np.uint8),
                                mask=np.ones((8, 8), np.float32))
    payload = run_payload(request, Branch("r0", 2, b"\x00state"))
    events = asyncio.run(_collect(StudioServer(server.url), payload))
    assert [e["type"] for e in events] == ["started", "step", "step", "step", "result"]
    assert np.array_equal(events[1]["preview"], PREVIEW) and np.array_equal(events[-1]["image"], PREVIEW)
    sent = server.seen["payload"]
    assert sent["request"]["seed"] == 3 and sent["branch"]["run"] == "r0" and sent["branch"]["step"] == 2
    assert wire.b64_bytes(sent["branch"]["state"], "state") == b"\x00state"
    assert np.array_equal(wire.image_from_png_b64(sent["images"]["mask"], mode="L"), np.full((8, 8), 255))


def test_a_stream_cut_mid_run_is_unreachable_after_the_steps_that_came(fake):
    server = fake(cut_after=3)
    events = []

    async def main():
        async with StudioServer(server.url) as client:
            async for event in client.run(run_payload(GenerationRequest())):
                events.append(event)

    with pytest.raises(ServerUnreachable) as caught:
        asyncio.run(main())
    assert [e["type"] for e in events] == ["started", "step", "step"]
    assert server.url in str(caught.value)


def test_an_error_event_raises_server_error_with_its_field(fake):
    server = fake(error_event={"type": "error", "error": "steps: must be from 1 to 1000", "field": "steps"})
    with pytest.raises(ServerError) as caught:
        asyncio.run(_collect(StudioServer(server.url), run_payload(GenerationRequest())))
    assert caught.value.field == "steps" and "steps: must be" in str(caught.value)


def test_a_wrong_token_says_to_give_the_servers_token(fake):
    server = fake()

    async def models(token):
        async with StudioServer(server.url, token) as client:
            return await client.models()

    with pytest.raises(ServerError) as caught:
        asyncio.run(models("wrong"))
    assert caught.value.status == 401 and "token" in str(caught.value) and "--token" in str(caught.value)
    assert asyncio.run(models("right"))["default"] == "toy"


def test_a_page_that_is_not_the_servers_json_is_a_readable_error(fake):
    server = fake()

    async def state():
        async with StudioServer(server.url) as client:
            return await client.state("r1", 0)

    with pytest.raises(ServerError) as caught:
        asyncio.run(state())
    assert caught.value.status == 502 and "<html>" not in str(caught.value)


def test_nothing_listening_is_unreachable_with_the_address():
    url = f"http://127.0.0.1:{free_port()}"

    async def health():
        async with StudioServer(url) as client:
            return await client.health()

    with pytest.raises(ServerUnreachable) as caught:
        asyncio.run(health())
    assert url in str(caught.value) and "python -m studio serve" in str(caught.value)


@pytest.mark.parametrize(("typed", "url"), [("localhost:8188", "http://localhost:8188"), ("gpu-box", "http://gpu-box:8188"),
                                            ("http://gpu-box:8188/v1/", "http://gpu-box:8188"),
                                            ("https://studio.example.org/gpu/", "https://studio.example.org/gpu")])
def test_server_addresses_are_taken_as_people_type_them(typed, url):
    assert server_url(typed) == url


@pytest.mark.parametrize("typed", ["ftp://host", "http://", "http://host:99999", ""])
def test_a_server_address_that_cannot_work_says_what_to_give(typed):
    with pytest.raises(ValueError, match="(?i)host:port|port"):
        server_url(typed)

