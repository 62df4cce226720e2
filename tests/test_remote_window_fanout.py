"""Fan-out in the window on a studio server (the shared 2-replica cluster, tests/serve_cluster.py): an X/Y/Z plot's
cells and a batch run several at once over the replicas, each streaming into its own run, the grid the same pixels
as this computer's; a cell that fails fails alone; Cancel stops them all."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from PySide6.QtWidgets import QComboBox, QLineEdit, QPushButton
from serve_cluster import REPLICAS, _wait_healthy
from serve_http import open_run
from test_remote_window import TIMEOUT, make_studio, on_server, set_panel, wait_ready

from studio.engine.request import GenerationRequest
from studio.serve import wire
from studio.state.jobs import JobFailure, JobResult
from studio.worker.qt_asyncio import release_loop
from studio.worker.remote_client import parallel_jobs


@pytest.fixture(autouse=True)
def _no_loop_left_running():
    yield
    release_loop()  # later tests may call asyncio.run() on this thread


@pytest.fixture
def both_replicas(serve_url):
    """The cluster's URL once both replicas take runs: after a test killed one, Ray Serve starts another, and
    the server routes to it a little after it reports it running."""
    _wait_healthy(serve_url, REPLICAS)
    payload = wire.run_payload(GenerationRequest(prompt="probe", model="toy", steps=20, width=16, height=16))
    deadline = time.monotonic() + 60
    while True:
        replies = [open_run(serve_url, payload) for _ in range(REPLICAS)]  # posted together, then read
        replicas = {json.loads(reply.readline())["replica"] for reply in replies}
        for reply in replies:
            reply.read()
            reply.close()
        if len(replicas) == REPLICAS or time.monotonic() > deadline:
            return serve_url
        time.sleep(0.5)


def watch_running(controller) -> list[int]:
    """How many jobs were running after each move of the window's queue."""
    counts: list[int] = []
    controller.queue.changed.connect(lambda: counts.append(len(controller.queue.running_jobs())))
    return counts


def run_plot(studio, qtbot, x: str, y: str):
    """The X/Y/Z dialog's Run with ``x`` and ``y`` typed in; the grid's history entry."""
    find = studio.controller.xyz.open_dialog().findChild  # its widgets by name, as test_ui_xyz_plot finds them
    for axis, text in (("X", x), ("Y", y)):
        kind, values = text.split(": ", 1)
        find(QComboBox, f"xyz{axis}Type").setCurrentText(kind)
        find(QLineEdit, f"xyz{axis}Values").setText(values)
    with qtbot.waitSignal(studio.controller.xyz.grid_added, timeout=TIMEOUT) as blocker:
        find(QPushButton, "xyzRun").click()
    return blocker.args[0]


def test_an_xyz_plot_runs_its_cells_at_once_on_both_replicas_and_makes_the_local_grid(qtbot, tmp_path, both_replicas):
    studio = make_studio(qtbot, tmp_path, on_server(both_replicas))
    controller = studio.controller
    assert studio.engine.parallel_jobs == 4  # 2 replicas, each running one with the next waiting
    set_panel(studio, prompt="red circle", steps=6, width=24, height=16, seed=5)
    counts = watch_running(controller)
    settled = []
    controller.job_settled.connect(settled.append)
    remote_grid = run_plot(studio, qtbot, "Steps: 6, 8", "Seed: 1, 2")
    results = [r for r in settled if isinstance(r, JobResult)]
    assert len(results) == 4 and max(counts) == 4  # all four cells were in flight together
    tracks = controller.timeline.runs()
    assert len(tracks) == 4 and sorted(len(t.frames) for t in tracks) == [6, 6, 8, 8]  # each its own run
    assert len({studio.engine.backend.replica_of(t.run_id) for t in tracks}) == 2  # both replicas made cells
    assert studio.window.history_view.model.rowCount() == 5  # four cells, then the grid

    controller.apply_settings(controller.settings.with_changes(engine="local"))
    wait_ready(studio, qtbot, "cpu")
    assert studio.engine.parallel_jobs == 1
    counts.clear()
    local_grid = run_plot(studio, qtbot, "Steps: 6, 8", "Seed: 1, 2")
    assert max(counts) == 1  # this computer's engine: one after another
    controller.history.writer.flush()
    assert np.array_equal(remote_grid.load_image(), local_grid.load_image())
    controller.shutdown()


def test_a_failing_cell_fails_alone_with_its_message(qtbot, tmp_path, both_replicas):
    studio = make_studio(qtbot, tmp_path, on_server(both_replicas))
    set_panel(studio, prompt="red circle", steps=3, width=24, height=16, seed=5)
    settled = []
    studio.controller.job_settled.connect(settled.append)
    grid = run_plot(studio, qtbot, "Prompt S/R: circle, circle <lora:nope:1>", "Seed: 1, 2")
    failures = [f for f in settled if isinstance(f, JobFailure)]
    assert len(failures) == 2 and all("nope" in f.message and not f.cancelled for f in failures)
    assert sum(isinstance(r, JobResult) for r in settled) == 2
    assert "2 failed cell(s) left blank" in studio.window.statusBar().currentMessage()
    studio.controller.history.writer.flush()
    image = grid.load_image()
    assert np.array_equal(image[-16:, -24:], np.full((16, 24, 3), image[-1, -1]))  # the failed corner is blank
    studio.controller.shutdown()


def test_cancel_stops_every_job_of_a_batch_on_the_server(qtbot, tmp_path, both_replicas):
    studio = make_studio(qtbot, tmp_path, on_server(both_replicas))
    controller = studio.controller
    set_panel(studio, prompt="red circle", steps=1000, width=24, height=16, seed=5, batch_count=6)
    settled = []
    controller.job_settled.connect(settled.append)
    controller.generate()
    assert len(controller.queue.running_jobs()) == 4 and len(controller.queue.pending()) == 2
    qtbot.waitUntil(lambda: sum(len(t.frames) > 0 for t in controller.timeline.runs()) >= 2, timeout=TIMEOUT)
    controller.cancel()
    qtbot.waitUntil(lambda: len(controller.queue) == 0, timeout=TIMEOUT)
    assert len(settled) == 4 and all(isinstance(f, JobFailure) and f.cancelled for f in settled)
    assert all(t.state == "cancelled" and len(t.frames) < 1000 for t in controller.timeline.runs())
    controller.shutdown()


@pytest.mark.parametrize(("health", "jobs"), [({"replicas": 2}, 4), ({"replicas": 2, "queue_limit": 3}, 3),
                                              ({"replicas": 0}, 2), ({"replicas": "x"}, 1), ({}, 2)])
def test_jobs_in_flight_follow_the_replicas_and_the_servers_queue_limit(health, jobs):
    assert parallel_jobs(health) == jobs
