"""Runs on the real local Ray cluster with two engine replicas: cancelling, closing the stream, exact branches on
either replica, two clients at once, the per-client queue limit, and a replica killed in the middle of a run."""

import base64
import json
import threading
import time

import numpy as np
from serve_cluster import APP_NAME
from serve_http import call, error_of, open_run, run_events

from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest
from studio.engine.runner import Runner
from studio.serve import wire
from studio.serve.app import RUN_HEADER

LONG = GenerationRequest(model="toy", sampler="euler", steps=400, width=256, height=256, seed=5)  # ~70 ms a step


def _short(seed: int, **changes) -> GenerationRequest:
    return GenerationRequest(**({"model": "toy", "sampler": "dpmpp_2m", "steps": 6, "seed": seed, "cfg_scale": 2.0}
                                | changes))


def _lines(reply, count: int) -> list[dict]:
    return [json.loads(reply.readline()) for _ in range(count)]


def _replicas_free(url: str, within_s: float) -> None:
    """Two short runs at once both finish in time: no replica is still busy with a run that was stopped."""
    results: list = []
    threads = [threading.Thread(target=lambda s=s: results.append(run_events(url, wire.run_payload(_short(s)))))
               for s in (1, 2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=within_s)
    assert time.monotonic() - started < within_s
    assert [events[-1]["type"] for events in results] == ["result", "result"]


def test_cancel_stops_the_run_within_a_step(serve_url):
    with open_run(serve_url, wire.run_payload(LONG)) as reply:
        run = reply.headers[RUN_HEADER]
        started = _lines(reply, 1)[0]
        assert started["type"] == "started" and started["run"] == run
        seen = _lines(reply, 3)
        assert json.loads(call(serve_url, f"/v1/runs/{run}/cancel", {})[1]) == {"cancelled": True}
        rest = [json.loads(line) for line in reply]
    after = [e for e in rest if e["type"] == "step"]
    assert rest[-1]["type"] == "cancelled" and rest[-1]["run"] == run
    assert len(after) <= 2 and rest[-1]["step"] == (after or seen)[-1]["index"] + 1
    # What the client saw it can branch from: the server holds those steps.
    assert call(serve_url, f"/v1/runs/{run}/state?step={rest[-1]['step'] - 1}")[0] == 200
    assert json.loads(call(serve_url, f"/v1/runs/{run}/cancel", {})[1]) == {"cancelled": False}
    _replicas_free(serve_url, within_s=20)  # the 400-step run would hold its replica for 25 s or more


def test_closing_the_stream_cancels_the_run(serve_url):
    for _ in range(5):  # more than the client's queue limit: each closed stream gave its place back
        with open_run(serve_url, wire.run_payload(LONG)) as reply:
            _lines(reply, 3)
    _replicas_free(serve_url, within_s=20)


def test_a_branch_is_exact_on_either_replica(serve_url):
    parent_request = _short(21, sampler="dpmpp_2m", steps=8)
    parent = run_events(serve_url, wire.run_payload(parent_request))
    run, parent_replica = parent[0]["run"], parent[0]["replica"]
    status, blob = call(serve_url, f"/v1/runs/{run}/state?step=3")
    assert status == 200 and b"diffusion-studio/run-state" in blob[:int.from_bytes(blob[:8], "little") + 8]
    local = Runner(ToyShapesModel())
    local_parent = local.run(parent_request)
    assert np.array_equal(wire.event_from_json(parent[-1])["image"], local_parent.image)
    branch_request = parent_request.with_changes(cfg_scale=3.5)
    expected = local.run(branch_request, branch_from=(local_parent.run_id, 3))
    replicas = set()
    state = base64.b64encode(blob).decode()
    for attempt in range(12):  # Ray Serve picks the replica: branch until both have run one
        branch = {"run": run, "step": 3, "state": state if attempt % 2 else None}
        events = run_events(serve_url, wire.run_payload(branch_request, branch=branch, latents=True))
        assert events[-1]["type"] == "result", events[-1]
        result = wire.event_from_json(events[-1])
        last_step = wire.event_from_json(events[-2])
        assert [e["index"] for e in events[1:-1]] == [4, 5, 6, 7]  # the lineage's steps after 3
        assert np.array_equal(last_step["latent"], expected.latent)  # bit for bit
        assert np.array_equal(result["image"], expected.image)
        assert result["parent"] == (run, 3)
        replicas.add(events[0]["replica"])
        if len(replicas) == 2:
            break
    assert parent_replica in replicas and len(replicas) == 2


def test_a_branch_of_a_branch_without_state(serve_url):
    first = run_events(serve_url, wire.run_payload(_short(31, sampler="euler_a")))
    branch = {"run": first[0]["run"], "step": 2}
    second = run_events(serve_url, wire.run_payload(_short(31, sampler="euler_a"), branch=branch))
    third = run_events(serve_url, wire.run_payload(_short(31, sampler="euler_a", cfg_scale=4.0),
                                                   branch={"run": second[0]["run"], "step": 4}))
    local = Runner(ToyShapesModel())
    a = local.run(_short(31, sampler="euler_a"))
    b = local.run(_short(31, sampler="euler_a"), branch_from=(a.run_id, 2))
    c = local.run(_short(31, sampler="euler_a", cfg_scale=4.0), branch_from=(b.run_id, 4))
    assert np.array_equal(wire.event_from_json(second[-1])["image"], a.image)  # an unchanged branch replays it
    assert np.array_equal(wire.event_from_json(third[-1])["image"], c.image)


def test_two_clients_at_once_run_on_both_replicas(serve_url):
    requests = [_short(41, steps=30, width=128, height=128), _short(42, steps=30, width=128, height=128)]
    events: dict[int, list] = {}
    times: dict[int, list] = {}

    def client(i: int) -> None:
        events[i], times[i] = [], []
        with open_run(serve_url, wire.run_payload(requests[i])) as reply:
            for line in reply:
                events[i].append(json.loads(line))
                times[i].append(time.monotonic())

    threads = [threading.Thread(target=client, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {events[0][0]["replica"], events[1][0]["replica"]} == {e[0]["replica"] for e in events.values()}
    assert events[0][0]["replica"] != events[1][0]["replica"]
    assert times[0][1] < times[1][-1] and times[1][1] < times[0][-1]  # each stepped while the other ran
    local = Runner(ToyShapesModel())
    for i in (0, 1):
        assert np.array_equal(wire.event_from_json(events[i][-1])["image"], local.run(requests[i]).image)


def test_a_client_over_its_queue_limit_gets_429(serve_url):
    replies = [open_run(serve_url, wire.run_payload(LONG)) for _ in range(4)]  # 2 running, 2 queued
    try:
        status, message, _ = error_of(call(serve_url, "/v1/runs", wire.run_payload(_short(1))))
        assert status == 429 and "4 runs" in message
        queued = replies[-1].headers[RUN_HEADER]
        assert json.loads(call(serve_url, f"/v1/runs/{queued}/cancel", {})[1]) == {"cancelled": True}
        assert json.loads(replies[-1].readline())["type"] == "cancelled"  # before it ever started
    finally:
        for reply in replies:
            reply.close()


def test_an_inpainting_run_with_its_images_on_the_wire_equals_the_local_one(serve_url):
    rng = np.random.default_rng(8)
    mask = np.zeros((32, 32), np.float32)
    mask[4:20, 10:30] = 1.0
    request = _short(61, sampler="euler_a", init_image=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), mask=mask,
                     strength=0.7, mask_feather=1.5)
    events = run_events(serve_url, wire.run_payload(request))
    assert events[-1]["type"] == "result", events[-1]
    assert np.array_equal(wire.event_from_json(events[-1])["image"], Runner(ToyShapesModel()).run(request).image)


# Last: the cluster runs on one replica until Ray Serve has replaced the killed one.
def test_a_killed_replica_ends_the_stream_and_the_retry_runs(serve_url):
    import ray

    with open_run(serve_url, wire.run_payload(LONG)) as reply:
        started = _lines(reply, 2)[0]
        ray.kill(ray.get_actor(started["replica"], namespace="serve"), no_restart=True)
        try:
            rest = [json.loads(line) for line in reply]
        except OSError:  # a broken stream is an allowed ending too
            rest = [{"type": "error", "error": "broken stream"}]
    assert rest[-1]["type"] == "error" and "replica" in rest[-1]["error"]
    assert started["replica"].startswith(f"SERVE_REPLICA::{APP_NAME}#Engine#")
    retry = run_events(serve_url, wire.run_payload(_short(51)))
    assert retry[-1]["type"] == "result" and retry[0]["replica"] != started["replica"]
    assert np.array_equal(wire.event_from_json(retry[-1])["image"], Runner(ToyShapesModel()).run(_short(51)).image)
