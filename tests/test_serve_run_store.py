"""studio/serve/run_store.py: the ingress keeps the states it was sent, serves any step of them, and forgets the
oldest finished runs by count and by size, never a running one."""

import pytest

from studio.engine.models.toy import ToyShapesModel
from studio.engine.request import GenerationRequest
from studio.engine.run_export import export_history, import_history
from studio.engine.runner import Runner
from studio.serve.run_store import RunRecord, RunStore, StepUnavailable, UnknownRun


@pytest.fixture(scope="module")
def history():
    runner = Runner(ToyShapesModel())
    return runner.history(runner.run(GenerationRequest(model="toy", steps=5, seed=1)).run_id)


def test_states_arrive_in_pieces_and_any_step_is_served(history):
    store = RunStore()
    record = RunRecord("r1", "client")
    store.add(record)
    with pytest.raises(StepUnavailable, match="no step yet"):
        store.state("r1", 0)
    store.add_states(record, export_history(history, upto=1))
    store.add_states(record, export_history(history, first=2, header=False))
    assert len(import_history(store.state("r1", 3)).states) == 4
    with pytest.raises(StepUnavailable, match="steps 0 to 4"):
        store.state("r1", 5)
    with pytest.raises(UnknownRun):
        store.state("r2", 0)


def test_old_finished_runs_are_forgotten_by_count_and_size(history):
    store = RunStore(keep=2)
    running = RunRecord("running", "c")
    store.add(running)
    for name in ("a", "b", "c"):
        record = RunRecord(name, "c")
        store.add(record)
        store.add_states(record, export_history(history))
        store.finish(record)
    assert store.get("running") is running
    with pytest.raises(UnknownRun):
        store.get("a")
    one_run = sum(s.x.nbytes for s in history.states) + history.noise.nbytes
    small = RunStore(keep=10, keep_bytes=one_run)
    for name in ("a", "b"):
        record = RunRecord(name, "c")
        small.add(record)
        small.add_states(record, export_history(history))
        small.finish(record)
    assert small.get("b").finished
    with pytest.raises(UnknownRun):
        small.get("a")
