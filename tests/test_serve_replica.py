"""studio/serve/replica.py without Ray: the events of a run, each step carrying its state for the ingress, and a
closed stream stopping the run before its next step."""

import asyncio

import numpy as np

from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest
from studio.engine.run_export import append_states, import_history
from studio.engine.runner import Runner
from studio.serve.options import ServerOptions
from studio.serve.replica import STATE, EngineReplica

REQUEST = GenerationRequest(model="toy", sampler="dpmpp_2m", steps=5, seed=4)


def _collect(replica: EngineReplica, request: GenerationRequest, branch=None) -> list[dict]:
    async def run():
        return [item async for item in replica.run("run-a", request, branch)]

    return asyncio.run(run())


def test_steps_carry_their_states_and_the_run_ends_with_its_result():
    replica = EngineReplica(ServerOptions(default_model="toy", threads=1), "replica-1")
    events = _collect(replica, REQUEST)
    assert [e["type"] for e in events] == ["started"] + ["step"] * 5 + ["result"]
    assert events[0] == {"type": "started", "run": "run-a", "replica": "replica-1"}
    history = import_history(events[1][STATE])
    for event in events[2:-1]:
        append_states(history, event[STATE])
    assert STATE not in events[-1] and len(history.states) == 5
    other = Runner(ToyShapesModel())
    branched = other.run(REQUEST.with_changes(cfg_scale=2.0), branch_from=(other.adopt(history), 2))
    local = Runner(ToyShapesModel())
    first = local.run(REQUEST)
    assert np.array_equal(branched.latent, local.run(REQUEST.with_changes(cfg_scale=2.0),
                                                     branch_from=(first.run_id, 2)).latent)


def test_a_closed_stream_stops_the_run_before_its_next_step():
    replica = EngineReplica(ServerOptions(default_model="toy", threads=1), "replica-1")
    long = REQUEST.with_changes(steps=1000, width=256, height=256)  # ~70 ms a step: the reader keeps up

    async def run_two_steps_then_close() -> int:
        stream = replica.run("run-b", long)
        seen = [await anext(stream) for _ in range(3)]  # started and two steps
        await stream.aclose()
        # The replica's run thread is single: once this no-op has run, the run thread has finished the run.
        await asyncio.get_running_loop().run_in_executor(replica._executor, lambda: None)
        return seen[-1]["index"]

    last_seen = asyncio.run(run_two_steps_then_close())
    local = replica._held["run-b"]
    ran = len(replica._runner.history(local).states)
    assert last_seen + 1 <= ran <= last_seen + 3  # the step under way, and at most one queued behind the close


def test_a_branch_without_a_state_that_the_replica_does_not_hold_is_an_error():
    replica = EngineReplica(ServerOptions(default_model="toy", threads=1), "replica-1")
    events = _collect(replica, REQUEST, branch={"run": "elsewhere", "step": 1, "state": None})
    assert events[-1]["type"] == "error" and events[-1]["field"] == "branch"
