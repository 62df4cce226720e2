"""The studio window with Settings → Engine → Server, on the shared local Ray cluster (tests/serve_cluster.py):
a run's steps stream into the timeline, a branch from the timeline is exact, a dropped connection shows the
banner and keeps the steps that came, and the engine switches both ways without a restart."""

from __future__ import annotations

import numpy as np
import pytest
from remote_net import Relay
from serve_cluster import TOKEN

from studio.state.jobs import JobFailure, JobResult
from studio.state.paths import StudioPaths
from studio.state.settings import Settings, save_settings
from studio.ui.settings_dialog import SettingsDialog
from studio.worker import remote_client
from studio.worker.qt_asyncio import release_loop

TIMEOUT = 30_000


@pytest.fixture(autouse=True)
def _no_loop_left_running():
    yield
    release_loop()  # later tests may call asyncio.run() on this thread


def make_studio(qtbot, root, settings: Settings):
    from studio.app import create_studio

    paths = StudioPaths.under(root)
    save_settings(paths.settings_file, settings)
    studio = create_studio(paths)
    qtbot.addWidget(studio.window)
    studio.window.show()
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(model="toy", seed_mode="fixed"))
    studio.start_engine()
    wait_ready(studio, qtbot)
    return studio


def wait_ready(studio, qtbot, where: str = "") -> None:
    status = studio.window.status.engine_label
    qtbot.waitUntil(lambda: status.text().startswith("Ready") and where in status.text()
                    and studio.window.panel.model.currentData() == "toy", timeout=60_000)


def settle(studio, qtbot, action):
    with qtbot.waitSignal(studio.controller.job_settled, timeout=TIMEOUT) as blocker:
        action()
    return blocker.args[0]


def set_panel(studio, **changes):
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(**changes))


def on_server(url: str) -> Settings:
    return Settings(engine="server", server_url=url, server_token=TOKEN)


def test_a_runs_steps_stream_into_the_timeline_and_a_branch_from_it_is_exact(qtbot, tmp_path, serve_url):
    studio = make_studio(qtbot, tmp_path, on_server(serve_url))
    assert studio.engine.remote and serve_url in studio.window.status.engine_label.text()
    set_panel(studio, prompt="blue triangle", steps=8, seed=4)
    result = settle(studio, qtbot, studio.controller.generate)
    assert isinstance(result, JobResult), getattr(result, "message", "")
    track = studio.controller.timeline.current
    assert len(track.frames) == 8 and track.state == "done" and "Seed: 4" in result.parameters
    assert np.array_equal(studio.window.canvas.image(), result.image)
    assert studio.window.history_view.model.rowCount() == 1

    branched = settle(studio, qtbot, lambda: studio.controller.branch(track.run_id, 3))
    assert isinstance(branched, JobResult), getattr(branched, "message", "")
    assert branched.parent == (track.run_id, 3) and branched.run_id > track.run_id
    assert np.array_equal(branched.image, result.image)  # unchanged settings: exactly the uninterrupted run
    studio.controller.shutdown()


def test_a_dropped_connection_shows_the_banner_keeps_the_steps_and_sends_the_job_again(qtbot, tmp_path, serve_url,
                                                                                      monkeypatch):
    monkeypatch.setattr(remote_client, "RETRY_S", 0.2)
    relay = Relay(serve_url)
    try:
        studio = make_studio(qtbot, tmp_path, on_server(relay.url))
        set_panel(studio, prompt="red circle", steps=1000, seed=5)
        steps = []

        def cut_at_first_step(event):
            steps.append(event)
            if len(steps) == 1:
                relay.cut()

        studio.engine.step.connect(cut_at_first_step)
        studio.controller.generate()
        banner = studio.window.banner
        qtbot.waitUntil(lambda: "Lost the studio server" in banner.text(), timeout=TIMEOUT)
        first = studio.controller.timeline.runs()[0]
        assert first.state == "failed" and len(first.frames) >= 1  # what came stays
        assert studio.controller.queue.running is not None  # the job waits for the server
        relay.restore()
        qtbot.waitUntil(lambda: any(e.run_id != first.run_id for e in steps), timeout=TIMEOUT)
        failure = settle(studio, qtbot, studio.controller.cancel)
        assert isinstance(failure, JobFailure) and failure.cancelled
        runs = studio.controller.timeline.runs()
        assert runs[0] is first and len(first.frames) >= 1 and runs[-1].state == "cancelled"
        studio.controller.shutdown()
    finally:
        relay.close()


def test_the_engine_switches_to_a_server_and_back_without_a_restart(qtbot, tmp_path, serve_url):
    studio = make_studio(qtbot, tmp_path, Settings())
    assert not studio.engine.remote
    controller = studio.controller
    controller.apply_settings(controller.settings.with_changes(engine="server", server_url=serve_url,
                                                               server_token=TOKEN))
    wait_ready(studio, qtbot, serve_url)
    set_panel(studio, prompt="green square", steps=4, seed=2)
    on_server_result = settle(studio, qtbot, controller.generate)
    assert isinstance(on_server_result, JobResult) and studio.engine.remote

    controller.apply_settings(controller.settings.with_changes(engine="local"))
    qtbot.waitUntil(lambda: not studio.engine.remote, timeout=TIMEOUT)
    wait_ready(studio, qtbot, "cpu")
    local_result = settle(studio, qtbot, controller.generate)
    assert isinstance(local_result, JobResult) and not studio.engine.remote
    assert np.array_equal(local_result.image, on_server_result.image)  # the same engine, the same pixels
    tracks = controller.timeline.runs()  # two runs, each with its own steps: ids never collide after a switch
    assert [len(t.frames) for t in tracks] == [4, 4] and tracks[0].run_id != tracks[1].run_id
    assert controller.settings.server_url == serve_url  # kept for the next time
    controller.shutdown()


def test_a_wrong_token_says_so_in_the_banner(qtbot, tmp_path, serve_url):
    from studio.app import create_studio

    paths = StudioPaths.under(tmp_path)
    save_settings(paths.settings_file, Settings(engine="server", server_url=serve_url, server_token="wrong"))
    studio = create_studio(paths)
    qtbot.addWidget(studio.window)
    studio.start_engine()
    banner = studio.window.banner
    qtbot.waitUntil(lambda: "token" in banner.text(), timeout=TIMEOUT)
    assert serve_url in banner.text() and "Settings → Engine" in banner.text()
    studio.controller.shutdown()


def test_settings_engine_box_keeps_the_server_and_refuses_an_address_that_cannot_work(qtbot):
    dialog = SettingsDialog(Settings(engine="local", server_url="gpu-box:8188", server_token="s"))
    qtbot.addWidget(dialog)
    box = dialog.engine_box
    assert not box.url.isEnabled()
    box.engine.setCurrentIndex(box.engine.findData("server"))
    assert box.url.isEnabled() and box.token.echoMode() == box.token.EchoMode.Password
    box.url.setText("ftp://gpu-box")
    assert not box.check() and "HOST:PORT" in box.problem.text()
    box.url.setText("gpu-box:8188")
    assert box.check()
    chosen = dialog.settings()
    assert (chosen.engine, chosen.server_url, chosen.server_token, chosen.on_server) == ("server", "gpu-box:8188",
                                                                                         "s", True)
