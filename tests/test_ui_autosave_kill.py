"""Autosave survives a real kill -9: a studio process edits, is killed, and the next launch restores."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from studio.state.paths import StudioPaths

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from studio.app import create_studio
    from studio.state.paths import StudioPaths

    app = QApplication([])
    studio = create_studio(StudioPaths.under(sys.argv[1]))
    studio.window.show()
    image = np.zeros((40, 48, 3), np.uint8)
    image[10:30, 12:36] = (30, 160, 90)
    studio.window.canvas.set_image(image)
    mask = np.zeros((40, 48), np.float32)
    mask[20:] = 1.0
    studio.window.canvas.set_mask(mask)
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(prompt="green square", steps=17))
    autosave = studio.controller.autosave

    def report():
        saved = autosave.load()
        if saved.panel is not None and saved.panel.prompt == "green square" and saved.mask is not None:
            print("saved", flush=True)
        else:
            QTimer.singleShot(20, report)

    QTimer.singleShot(20, report)
    app.exec()
""")


def test_kill_9_keeps_canvas_mask_and_panel(qtbot, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_WAIT_POLICY="PASSIVE")
    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             env=env, cwd=root)
    try:
        assert child.stdout.readline().strip() == "saved"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    from studio.app import create_studio

    studio = create_studio(StudioPaths.under(tmp_path))
    qtbot.addWidget(studio.window)
    image = studio.window.canvas.image()
    assert image.shape == (40, 48, 3) and tuple(image[20, 20]) == (30, 160, 90)
    mask = studio.window.canvas.mask()
    assert mask is not None and mask[30].min() == 1.0 and mask[5].max() == 0.0
    values = studio.window.panel.values()
    assert values.prompt == "green square" and values.steps == 17
    studio.controller.writer.flush()
