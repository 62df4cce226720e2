"""The engine thread: jobs in, step previews and results out as signals; cancel; readable errors."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from studio.state.jobs import Job
from studio.state.panel_values import PanelValues
from studio.worker import EngineClient

TOY = PanelValues(prompt="red circle", model="toy", steps=6, seed=3, seed_mode="fixed", width=32, height=32)


@pytest.fixture
def engine(qtbot):
    client = EngineClient()
    with qtbot.waitSignal(client.worker.model_loaded, timeout=60_000):
        client.start("cpu", 0, "toy")
    yield client
    client.stop()


def test_job_streams_every_step_then_the_result(engine, qtbot):
    steps = []
    engine.worker.step.connect(steps.append)
    with qtbot.waitSignal(engine.worker.finished, timeout=10_000) as blocker:
        engine.submit(Job(1, TOY))
    result = blocker.args[0]
    assert [s.index for s in steps] == list(range(6))
    assert all(s.preview.dtype == np.uint8 for s in steps)
    assert result.image.shape == (32, 32, 3)
    assert "Steps: 6" in result.parameters and "Seed: 3" in result.parameters


def test_cancel_stops_within_one_step(engine, qtbot):
    seen = []

    def on_step(event):
        seen.append(event.index)
        if event.index == 2:
            engine.cancel()

    # A direct connection runs on_step on the engine thread, so the cancel lands at an exact step;
    # the UI tests cancel from the UI thread.
    engine.worker.step.connect(on_step, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(engine.worker.failed, timeout=10_000) as blocker:
        engine.submit(Job(2, TOY.with_changes(steps=30)))
    failure = blocker.args[0]
    assert failure.cancelled and failure.step == 3
    assert max(seen) == 2


def test_a_bad_request_is_a_readable_message_and_the_engine_keeps_working(engine, qtbot):
    with qtbot.waitSignal(engine.worker.failed, timeout=10_000) as blocker:
        engine.submit(Job(3, TOY.with_changes(width=36)))
    assert blocker.args[0].field == "width" and "multiple of 8" in blocker.args[0].message
    with qtbot.waitSignal(engine.worker.failed, timeout=10_000) as blocker:
        engine.submit(Job(4, TOY.with_changes(model="no-such-model")))
    assert "no-such-model" in blocker.args[0].message
    with qtbot.waitSignal(engine.worker.finished, timeout=10_000):
        engine.submit(Job(5, TOY))


def test_model_folders_are_scanned_for_checkpoints(engine, qtbot, tmp_path):
    pytest.importorskip("diffusers")
    from studio.engine.models.sd.testing import build_random, save_single_file

    save_single_file(build_random("sd1", seed=0), tmp_path / "my-tiny-sd15.safetensors")
    with qtbot.waitSignal(engine.worker.ready, timeout=30_000) as blocker:
        engine.rescan((str(tmp_path),))
    labels = {m.key: m.label for m in blocker.args[0].models}
    key = "sd:" + str(tmp_path / "my-tiny-sd15.safetensors")
    assert key in labels and labels[key].startswith("my-tiny-sd15") and "toy" in labels
