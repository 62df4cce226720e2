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
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # the toolbar and the menu follow
    assert canvas.control_mode() and window.canvas_toolbar.control_button.isChecked()
    assert window.control_layer_action.isChecked()
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


def test_preview_shows_the_first_units_control_map_made_off_the_ui_thread(qtbot, tmp_path):
    from studio.engine.control_preprocess import control_map
    from studio.state.control_units import ControlSettings

    studio = make_studio(qtbot, tmp_path)
    window, canvas = studio.window, studio.window.canvas
    preview = window.canvas_toolbar.preview_button
    canvas.set_image(np.full((64, 64, 3), 128, np.uint8))
    panel = window.panel
    units = (ControlSettings(True, "control_sd15_canny", "canny"),) + panel.values().controlnets[1:]
    panel.set_values(panel.values().with_changes(width=64, height=64, controlnets=units))
    layer = np.zeros((64, 64, 3), np.uint8)
    layer[20:40, 20:40] = 255
    canvas.set_control_image(layer)
    assert preview.isEnabled()
    preview.click()
    qtbot.waitUntil(canvas.is_previewing_control, timeout=TIMEOUT)
    expected = (control_map(layer, "canny", 64, 64) * 255 + 0.5).astype(np.uint8)
    shown = canvas.control_preview()
    assert np.array_equal(shown, expected) and shown[15:25, 30].max() == 255 and shown[30, 30].max() == 0  # edges

    # Another preprocessor in the panel: the preview follows.
    units = (ControlSettings(True, "control_sd15_canny", "lineart_strokes"),) + units[1:]
    panel.set_values(panel.values().with_changes(controlnets=units))
    qtbot.waitUntil(lambda: canvas.control_preview() is not None and canvas.control_preview()[30, 30].max() == 0
                    and canvas.control_preview()[5, 5].min() == 255, timeout=TIMEOUT)  # inverted
    canvas.set_control_mode(False)  # leaving the layer ends the preview
    assert not preview.isChecked() and not canvas.is_previewing_control()
    studio.controller.shutdown()


def test_a_dropped_image_naming_controlnet_units_sets_the_panels_units(qtbot, tmp_path):
    from PIL import Image, PngImagePlugin

    studio = make_studio(qtbot, tmp_path)
    panel = studio.window.panel
    text = ('a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x64, ControlNet 0: "Module: canny, '
            'Model: control_sd15_canny [abcd1234], Weight: 0.8, Guidance Start: 0.1, Guidance End: 0.9"')
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    with qtbot.waitSignal(studio.controller.files.settings_restored, timeout=TIMEOUT):
        studio.controller.files.open_file(str(path))
    first, second, _third = panel.values().controlnets
    assert (first.enabled, first.model, first.preprocessor, first.weight, first.start, first.end) == (
        True, "control_sd15_canny", "canny", 0.8, 0.1, 0.9)
    assert not second.enabled
    assert panel.controlnets.units[0].details.isVisible()
    # A text without units switches them off again, keeping their settings.
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a dog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 6, Size: 64x64")
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    studio.controller.files.open_file(str(path))
    first = panel.values().controlnets[0]
    assert not first.enabled and first.model == "control_sd15_canny"
    studio.controller.shutdown()


def test_a_finished_image_is_shown_without_the_control_layer_over_it(qtbot, tmp_path):
    from tests.test_ui_studio import set_panel, settle

    studio = make_studio(qtbot, tmp_path)
    canvas = studio.window.canvas
    layer = np.zeros((64, 64, 3), np.uint8)
    layer[30:34] = 255
    canvas.set_control_image(layer)
    assert canvas.control_mode()
    set_panel(studio, steps=2, seed_mode="fixed")
    settle(studio, qtbot, studio.controller.generate)
    assert "control layer is not used" in studio.window.banner.text()  # drawn and shown, but no unit is on
    assert not canvas.control_mode() and not studio.window.control_layer_action.isChecked()
    assert np.array_equal(canvas.control_image(), layer)  # kept with the document for the next run
    studio.controller.shutdown()


def test_opening_a_units_controlnet_picker_lists_the_folders_again(qtbot, tmp_path):
    nets = tmp_path / "my models" / "ControlNet"
    nets.mkdir(parents=True)
    (nets / "control_sd15_canny.safetensors").write_bytes(b"")
    studio = make_studio(qtbot, tmp_path)
    controller, unit = studio.controller, studio.window.panel.controlnets.units[0]

    def offered() -> list[str]:
        return [unit.model.itemData(i) for i in range(unit.model.count())]

    controller.apply_settings(controller.settings.with_changes(model_folders=(str(nets),)))
    qtbot.waitUntil(lambda: offered() == ["control_sd15_canny"], timeout=TIMEOUT)
    (nets / "control_sd15_scribble.safetensors").write_bytes(b"")  # copied in while the studio runs
    unit.enabled.click()
    unit.model.showPopup()
    qtbot.waitUntil(lambda: "control_sd15_scribble" in offered(), timeout=TIMEOUT)
    unit.model.hidePopup()
    studio.controller.shutdown()
