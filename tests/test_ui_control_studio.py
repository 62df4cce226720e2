"""The control layer and the ControlNet units in the whole studio window (offscreen, toy model engine)."""

import numpy as np

from tests.test_ui_studio import TIMEOUT, make_studio


def test_autosave_keeps_the_control_layer_through_a_crash(qtbot, tmp_path):
    first = make_studio(qtbot, tmp_path)
    canvas = first.window.canvas
    canvas.set_image(np.full((32, 32, 3), 90, np.uint8))
    control = np.zeros((32, 32, 3), np.uint8)
    control[10:12, 4:28] = 255
    canvas.set_control_image(control)
    autosave = first.controller.autosave
    qtbot.waitUntil(lambda: autosave.file.exists() and autosave.load().control is not None, timeout=TIMEOUT)
    first.engine.stop()  # no shutdown(): as after kill -9, only the autosave is on disk

    second = make_studio(qtbot, tmp_path)
    assert np.array_equal(second.window.canvas.control_image(), control)
    assert not second.window.canvas.control_mode()  # restored, not pushed in front of the image
    second.window.canvas.clear_control()
    qtbot.waitUntil(lambda: autosave.load().control is None, timeout=TIMEOUT)
    second.controller.shutdown()
