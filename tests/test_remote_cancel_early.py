"""A job cancelled in the moment between Generate and its first step on the server's client is cancelled, not sent
(Qt's loop runs the job's task only after the click that cancels it)."""

from __future__ import annotations

import pytest

pytest.importorskip("aiohttp")
from remote_net import free_port  # noqa: E402

from studio.state.jobs import Job, JobFailure  # noqa: E402
from studio.state.panel_values import PanelValues  # noqa: E402
from studio.worker.qt_asyncio import release_loop  # noqa: E402
from studio.worker.remote_client import RemoteEngineClient  # noqa: E402


def test_a_job_cancelled_before_its_task_ran_is_cancelled_and_never_sent(qtbot):
    client = RemoteEngineClient(f"http://127.0.0.1:{free_port()}")  # nothing listens: a sent job would wait on
    try:
        failures: list[JobFailure] = []
        client.failed.connect(failures.append)
        for job in (Job(1, PanelValues(model="toy")), Job(2, PanelValues(model="toy"))):
            client.submit(job)
        client.cancel()  # every job sent, as the window's Cancel asks
        qtbot.waitUntil(lambda: len(failures) == 2, timeout=5000)
        assert all(f.cancelled and "before it was sent" in f.message for f in failures)
        assert sorted(f.job_id for f in failures) == [1, 2]
    finally:
        client.stop()
        release_loop()
