"""Run ids are unique in the process: the window's timeline keeps runs of every model it used by their ids, and a
new model's Runner counting from 1 again put its steps in an older run's track."""

from studio.engine.models.registry import load_model
from studio.engine.request import GenerationRequest
from studio.engine.runner import Runner


def test_two_runners_never_hand_out_the_same_run_id():
    request = GenerationRequest(model="toy", steps=2, seed=1)
    first, second = Runner(load_model("toy", "cpu")), Runner(load_model("toy", "cpu"))
    ids = [first.run(request).run_id, second.run(request).run_id, first.run(request).run_id]
    assert len(set(ids)) == 3
