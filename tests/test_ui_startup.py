"""The window shows without importing torch (it loads later, on the engine thread)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import sys, tempfile, time
    t0 = time.perf_counter()
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from studio.app import create_studio
    from studio.state.paths import StudioPaths
    studio = create_studio(StudioPaths.under(tempfile.mkdtemp()), app)
    studio.window.show()
    app.processEvents()
    print(time.perf_counter() - t0, "torch" in sys.modules)
""")


def test_window_shows_quickly_without_torch():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    seconds, torch_loaded = float(out[0]), out[1] == "True"
    assert not torch_loaded
    assert seconds < 1.5, f"window took {seconds:.2f} s to show"
