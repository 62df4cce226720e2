"""The window shows without importing torch (it loads later, on the engine thread).

How fast it shows is a benchmark, not a test (a busy machine made a wall-time bound flaky):
benchmarks/bench_ui_latency.py prints "startup to a shown window" against its goal.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import sys, tempfile
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from studio.app import create_studio
    from studio.state.paths import StudioPaths
    studio = create_studio(StudioPaths.under(tempfile.mkdtemp()), app)
    studio.window.show()
    app.processEvents()
    print(studio.window.isVisible(), "torch" in sys.modules)
""")


def test_the_window_shows_without_torch():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    shown, torch_loaded = out[0] == "True", out[1] == "True"
    assert shown and not torch_loaded
