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


def test_strokes_on_the_control_layer_reach_the_job_of_a_unit_that_is_on(qtbot, tmp_path):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from tests.test_ui_studio import settle

    studio = make_studio(qtbot, tmp_path)
    window, canvas = studio.window, studio.window.canvas
    canvas.set_image(np.full((64, 64, 3), 128, np.uint8))
    canvas.set_brush_size(4)
    window.control_layer_action.trigger()  # Ctrl+L: the toolbar and the canvas follow
    assert canvas.control_mode() and window.canvas_toolbar.control_button.isChecked()
    points = [canvas.map_from_image(QPointF(x, 32)).toPoint() for x in (8, 30, 56)]
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
    for p in points[1:]:
        QTest.mouseMove(canvas, p)
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1])
    assert canvas.mask() is None

    first = window.panel.controlnets.units[0]
    first.set_models(["control_sd15_scribble"])
    first.enabled.click()
    sent = []
    real_submit = studio.engine.submit
    studio.engine.submit = lambda job: (sent.append(job), real_submit(job))
    failure = settle(studio, qtbot, studio.controller.generate)
    (job,) = sent
    (image, _off, _off2) = job.control_images
    assert image.shape == (64, 64, 3) and image[32, 10:54].min() == 255 and image[:20].max() == 0
    # The toy model has no ControlNet to steer: the engine says so, and the units are outlined.
    assert "controlnet" in failure.message.lower() or failure.field == "controlnets"
    studio.controller.shutdown()
