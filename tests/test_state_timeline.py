"""TimelineModel: one frame per step, branches share their parent's frames, memory stays bounded."""

import numpy as np

from studio.state.jobs import JobResult, StepPreview
from studio.state.panel_values import PanelValues
from studio.state.timeline import TimelineModel, shrink

VALUES = PanelValues()


def step(run_id, index, total=10, parent=None, size=32, value=None):
    preview = np.full((size, size, 3), index if value is None else value, np.uint8)
    return StepPreview(run_id, run_id, index, total, 1.0 / (index + 1), preview, 0.01 * index, parent)


def finish(model, run_id, size=32):
    model.finish(JobResult(run_id, run_id, VALUES, np.zeros((size, size, 3), np.uint8), "p", "toy", 10, 0.1))


def test_every_step_is_kept_and_the_result_is_the_last_position(qtbot):
    model = TimelineModel()
    for i in range(10):
        model.add_step(step(1, i), VALUES)
    assert len(model.current.frames) == 10 and model.position == 9
    finish(model, 1)
    assert model.position_count() == 11 and model.position == 10
    assert model.image_at(10) is model.current.final
    model.set_position(3)
    assert model.image_at(model.position)[0, 0, 0] == 3


def test_a_branch_shares_its_parents_first_frames(qtbot):
    model = TimelineModel()
    for i in range(10):
        model.add_step(step(1, i), VALUES)
    finish(model, 1)
    for i in range(5, 10):
        model.add_step(step(2, i, parent=(1, 4), value=100 + i), VALUES)
    parent, child = model.run(1), model.run(2)
    assert model.current is child and child.first_own_step == 5
    assert [f is g for f, g in zip(child.frames[:5], parent.frames[:5], strict=True)] == [True] * 5
    assert child.frames[5][0, 0, 0] == 105
    assert model.branch_points(1) == {4} and model.branch_points(2) == set()  # its own start is shaded instead
    assert [t.run_id for t in model.children(1)] == [2]


def test_memory_is_bounded_by_dropping_old_runs(qtbot):
    frame_bytes = 128 * 128 * 3
    model = TimelineModel(max_side=128, budget_bytes=frame_bytes * 25)
    removed = []
    model.runs_removed.connect(removed.extend)
    for run in range(1, 6):
        for i in range(10):
            model.add_step(step(run, i, size=128), VALUES)
        finish(model, run, size=16)
    assert model.memory_bytes() <= frame_bytes * 25 + 16 * 16 * 3 * 5
    assert removed and 5 in {t.run_id for t in model.runs()}  # the newest (shown) run stays
    assert 1 in removed


def test_previews_are_shrunk_to_max_side():
    big = np.random.default_rng(0).integers(0, 255, (512, 256, 3), dtype=np.uint8)
    small = shrink(big, 128)
    assert small.shape == (128, 64, 3) and small.dtype == np.uint8
    tiny = np.zeros((32, 32, 3), np.uint8)
    assert shrink(tiny, 128) is tiny


def test_the_shown_step_follows_a_live_run_unless_the_user_scrubbed_back(qtbot):
    model = TimelineModel()
    for i in range(4):
        model.add_step(step(1, i), VALUES)
    assert model.position == 3
    model.set_position(1)
    model.add_step(step(1, 4), VALUES)
    assert model.position == 1
    model.set_position(4)
    model.add_step(step(1, 5), VALUES)
    assert model.position == 5
