"""The asyncio client (studio/serve/client.py) against the real Serve app on the shared local Ray cluster
(tests/serve_cluster.py: the toy model, 2 CPU replicas, token "t0ken"): a run streams, cancels, branches exactly
from the state blob the client kept, and each refusal is a readable ServerError."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serve_cluster import TOKEN

from studio.engine.request import GenerationRequest
from studio.serve.client import Branch, ServerError, StudioServer, run_payload

REQUEST = GenerationRequest(prompt="red circle", model="toy", steps=8, seed=11, width=32, height=32)


async def _events(server: StudioServer, payload: dict, on_event=None) -> list[dict]:
    events = []
    async for event in server.run(payload):
        events.append(event)
        if on_event is not None:
            await on_event(event)
    return events


def test_a_run_streams_every_step_and_branches_exactly_from_the_state_the_client_kept(serve_url):
    async def main():
        async with StudioServer(serve_url, TOKEN) as server:
            first = await _events(server, run_payload(REQUEST))
            run = first[0]["run"]
            state = await server.state(run, 7)
            branched = await _events(server, run_payload(REQUEST, Branch(run, 3, state)))
            return first, branched

    first, branched = asyncio.run(main())
    assert [e["type"] for e in first] == ["started"] + ["step"] * 8 + ["result"]
    assert [e["index"] for e in first[1:-1]] == list(range(8))
    assert first[1]["preview"].dtype == np.uint8 and first[-1]["image"].shape == (32, 32, 3)
    assert "Seed: 11" in first[-1]["parameters"]
    assert [e["index"] for e in branched if e["type"] == "step"] == [4, 5, 6, 7]  # after step 3 only
    assert np.array_equal(branched[-1]["image"], first[-1]["image"])  # unchanged settings: the same image


def test_cancel_stops_a_run_before_its_next_step(serve_url):
    async def main():
        async with StudioServer(serve_url, TOKEN) as server:
            run = []

            async def cancel_at_first_step(event):
                if event["type"] == "started":
                    run.append(event["run"])
                elif event["type"] == "step" and event["index"] == 0:
                    assert await server.cancel(run[0])

            return await _events(server, run_payload(REQUEST.with_changes(steps=1000)), cancel_at_first_step)

    events = asyncio.run(main())
    assert events[-1]["type"] == "cancelled" and events[-1]["step"] < 999
    assert len([e for e in events if e["type"] == "step"]) < 1000


def test_a_model_is_described_with_its_size_and_advice(serve_url):
    async def main():
        async with StudioServer(serve_url, TOKEN) as server:
            described = await server.model("toy")
            with pytest.raises(ServerError) as caught:
                await server.model("../toy")
            return described, caught.value

    described, refused = asyncio.run(main())
    assert described["default_size"] == [32, 32] and described["recommended"]["steps"] == 20
    assert described["label"] and described["family"] == "toy"
    assert refused.status == 404 and refused.field == "model"


@pytest.mark.parametrize(("token", "request_", "status", "field", "says"), [
    ("wrong", REQUEST, 401, None, "token the server was started with"),
    (TOKEN, REQUEST.with_changes(model="../../etc/passwd"), 404, "model", "python -m studio models --server"),
    (TOKEN, REQUEST.with_changes(steps=0), 400, "steps", "steps"),
])
def test_refusals_are_server_errors_that_say_what_to_fix(serve_url, token, request_, status, field, says):
    async def main():
        async with StudioServer(serve_url, token) as server:
            return await _events(server, run_payload(request_))

    with pytest.raises(ServerError) as caught:
        asyncio.run(main())
    assert caught.value.status == status and caught.value.field == field
    assert says in str(caught.value)
