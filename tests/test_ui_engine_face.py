"""The engine's one face on the UI thread: every signal the UI connects to arrives on the UI thread."""

import re
import threading
from pathlib import Path

from studio.state.jobs import Job
from studio.state.panel_values import PanelValues
from studio.worker import EngineClient

TOY = PanelValues(prompt="red circle", model="toy", steps=3, seed=3, seed_mode="fixed", width=32, height=32)
UI = Path(__file__).resolve().parents[1] / "studio" / "ui"


def test_lambdas_connected_to_the_client_run_on_the_ui_thread(qtbot):
    client = EngineClient()
    threads: dict[str, set[bool]] = {}

    def record(name):
        # A lambda on purpose: connected to the worker itself it would run on the engine thread.
        return lambda *_: threads.setdefault(name, set()).add(threading.current_thread() is threading.main_thread())

    for name in ("status", "ready", "model_loaded", "step", "finished", "failed", "described"):
        getattr(client, name).connect(record(name))
    try:
        with qtbot.waitSignal(client.model_loaded, timeout=60_000):
            client.start("cpu", 0, "toy")
        with qtbot.waitSignal(client.finished, timeout=10_000):
            client.submit(Job(1, TOY))
        with qtbot.waitSignal(client.failed, timeout=10_000):
            client.submit(Job(2, TOY.with_changes(model="no-such-model")))
        with qtbot.waitSignal(client.described, timeout=10_000):
            client.describe("toy", "kitten")
    finally:
        client.stop()
    assert set(threads) == {"status", "ready", "model_loaded", "step", "finished", "failed", "described"}
    assert all(on_ui == {True} for on_ui in threads.values()), threads


def test_ui_code_connects_to_the_client_never_to_the_worker():
    offenders = [str(p.relative_to(UI)) for p in UI.rglob("*.py")
                 if re.search(r"\.worker\.\w+\.connect", p.read_text())]
    assert offenders == []
