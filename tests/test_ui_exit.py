"""Closing the window ends the process at once: what matters is saved first, Python's teardown is skipped."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import atexit, sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import studio.app

    app = QApplication([])
    studio.app.Studio.start_engine = lambda self: None  # the window alone: no model to load for this
    atexit.register(lambda: print("python teardown ran", flush=True))

    def close():
        window = next(w for w in app.topLevelWidgets() if w.objectName() == "mainWindow")
        window.panel.steps.setValue(7)
        sys.stdout.write(f"closing {time.monotonic()}\\n"); sys.stdout.flush()  # one write (engine prints too)
        window.close()

    QTimer.singleShot(200, close)
    sys.exit(studio.app.main([]))
""")


def run_until_exit(script: str, home: Path) -> tuple[str, float]:
    """Run ``script`` as the studio's process; its stdout and the seconds from its "closing" line to its exit."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_WAIT_POLICY="PASSIVE", DIFFUSION_STUDIO_HOME=str(home))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    ended = time.monotonic()
    assert run.returncode == 0, run.stderr
    closing = float(next(line for line in run.stdout.splitlines() if line.startswith("closing")).split()[1])
    return run.stdout, ended - closing


def test_the_process_ends_when_the_window_closes_after_saving(tmp_path):
    stdout, exit_s = run_until_exit(CHILD, tmp_path)
    assert "python teardown ran" not in stdout  # skipped: it kept the process alive for 3-9 s
    settings = next(tmp_path.rglob("settings.json"))
    assert json.loads(settings.read_text())["panel"]["steps"] == 7  # saved before the process ended
    assert exit_s < 5.0  # generous for a busy machine; the teardown alone took 3-9 s


BUSY_ENGINE = textwrap.dedent("""
    import sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import studio.app
    import studio.worker.engine_worker as engine_worker

    app = QApplication([])
    # The first thing the engine thread does when it starts; now it takes as long as torch on a slow disk.
    engine_worker._yield_to_the_ui = lambda: (sys.stdout.write("engine busy\\n"), sys.stdout.flush(), time.sleep(60))

    def close():
        window = next(w for w in app.topLevelWidgets() if w.objectName() == "mainWindow")
        sys.stdout.write(f"closing {time.monotonic()}\\n"); sys.stdout.flush()  # one write (engine prints too)
        window.close()

    QTimer.singleShot(500, close)
    sys.exit(studio.app.main([]))
""")


def test_closing_while_the_engine_is_busy_does_not_wait_for_it(tmp_path):
    stdout, exit_s = run_until_exit(BUSY_ENGINE, tmp_path)
    assert "engine busy" in stdout and next(tmp_path.rglob("settings.json")).exists()
    assert exit_s < 6.0  # it waited the engine's full 10 s before
