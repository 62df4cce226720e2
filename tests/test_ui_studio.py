"""The studio window, offscreen, driving the real engine thread with the toy model."""

import json

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtTest import QTest

from studio.io.png import read_parameters
from studio.state.jobs import JobFailure, JobResult, ModelChoice
from studio.state.paths import StudioPaths

TIMEOUT = 20_000


def make_studio(qtbot, root):
    from studio.app import create_studio

    studio = create_studio(StudioPaths.under(root))
    qtbot.addWidget(studio.window)
    studio.window.show()
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(model="toy"))
    studio.start_engine()
    status = studio.window.status.engine_label
    qtbot.waitUntil(lambda: status.text().startswith("Ready") and panel.model.currentData() == "toy", timeout=60_000)
    return studio


@pytest.fixture
def studio(qtbot, tmp_path):
    s = make_studio(qtbot, tmp_path)
    yield s
    s.controller.shutdown()


def settle(studio, qtbot, action, timeout=TIMEOUT):
    """Run ``action`` and wait until the window has taken in the job's result or failure."""
    with qtbot.waitSignal(studio.controller.job_settled, timeout=timeout) as blocker:
        action()
    return blocker.args[0]


def set_panel(studio, **changes):
    panel = studio.window.panel
    panel.set_values(panel.values().with_changes(**changes))


def shown_frame(canvas):
    # The canvas keeps the transient frame's pixels; there is no public getter (it only paints them).
    return canvas._frame_pixels if canvas.is_showing_frame() else None


def test_generate_fills_the_timeline_with_one_entry_per_step(studio, qtbot):
    set_panel(studio, prompt="blue triangle", steps=8, seed=4, seed_mode="fixed")
    result = settle(studio, qtbot, studio.controller.generate)
    assert isinstance(result, JobResult)
    track = studio.controller.timeline.current
    assert len(track.frames) == 8 and track.state == "done"
    assert studio.window.timeline_view.strip.count() == 9  # 8 steps and the result
    assert np.array_equal(studio.window.canvas.image(), result.image)
    assert studio.window.history_view.model.rowCount() == 1
    assert "Seed: 4" in result.parameters


def test_ctrl_enter_generates_and_batch_count_queues_several(studio, qtbot):
    set_panel(studio, steps=3, seed=10, seed_mode="fixed", batch_count=3)
    settled = []
    studio.controller.job_settled.connect(settled.append)
    prompt = studio.window.panel.prompt
    prompt.setFocus()
    text = prompt.toPlainText()
    QTest.keyClick(prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert len(studio.controller.queue) == 3
    assert prompt.toPlainText() == text  # the shortcut, not a new line in the prompt
    qtbot.waitUntil(lambda: len(settled) == 3, timeout=TIMEOUT)
    assert [r.values.seed for r in settled] == [10, 11, 12]
    assert studio.window.history_view.model.rowCount() == 3


def test_scrubbing_shows_that_steps_image(studio, qtbot):
    set_panel(studio, steps=10, seed=2, seed_mode="fixed")
    settle(studio, qtbot, studio.controller.generate)
    view, canvas, track = studio.window.timeline_view, studio.window.canvas, studio.controller.timeline.current
    view.slider.setValue(3)
    assert shown_frame(canvas) is not None and np.array_equal(shown_frame(canvas), track.frames[3])
    assert "Step 4 of 10" in view.step_label.text()
    QTest.mouseClick(view.strip, Qt.MouseButton.LeftButton, pos=view.strip.thumb_rect(6).center())
    assert np.array_equal(shown_frame(canvas), track.frames[6])
    view.strip.setFocus()
    QTest.keyClick(view.strip, Qt.Key.Key_Left)
    assert np.array_equal(shown_frame(canvas), track.frames[5])
    view.slider.setValue(view.slider.maximum())  # the result is the document itself
    assert not canvas.is_showing_frame()


def test_cancel_stops_within_one_step_and_the_engine_keeps_working(studio, qtbot):
    set_panel(studio, steps=400, width=128, height=128, seed=1, seed_mode="fixed")
    emitted = []
    studio.engine.worker.step.connect(lambda e: emitted.append(e.index), Qt.ConnectionType.DirectConnection)
    seen_at_cancel = []

    def cancel_after_first_step():
        if studio.controller.timeline.current and studio.controller.timeline.current.frames and not seen_at_cancel:
            seen_at_cancel.append(len(emitted))
            studio.controller.cancel()

    studio.controller.timeline.frame_added.connect(cancel_after_first_step)
    failure = settle(studio, qtbot, studio.controller.generate)
    assert isinstance(failure, JobFailure) and failure.cancelled
    assert failure.step <= seen_at_cancel[0] + 1 < 400  # the step under way finishes; no other starts
    assert "Cancelled" in studio.window.banner.text()
    studio.controller.timeline.frame_added.disconnect(cancel_after_first_step)
    set_panel(studio, steps=3, width=32, height=32)
    assert isinstance(settle(studio, qtbot, studio.controller.generate), JobResult)


def test_branch_from_step_k_continues_the_run(studio, qtbot):
    set_panel(studio, prompt="red circle", steps=10, seed=7, seed_mode="fixed")
    first = settle(studio, qtbot, studio.controller.generate)
    view = studio.window.timeline_view
    view.slider.setValue(4)
    branch = settle(studio, qtbot, view.branch_button.click)
    assert isinstance(branch, JobResult) and branch.parent == (first.run_id, 4)
    timeline = studio.controller.timeline
    parent, child = timeline.run(first.run_id), timeline.current
    assert child.run_id == branch.run_id and len(child.frames) == 10
    assert all(child.frames[i] is parent.frames[i] for i in range(5))  # shared, not copied
    assert np.array_equal(branch.image, first.image)  # unchanged settings reproduce the run
    assert 4 in timeline.branch_points(first.run_id)
    top = view.runs.topLevelItem(0)
    assert top.childCount() == 1 and "from step 5" in top.child(0).text(0)


def test_painting_changes_the_mask_and_inpaints(studio, qtbot):
    canvas = studio.window.canvas
    canvas.zoom_fit()
    canvas.set_brush_size(3)
    assert not canvas.has_mask()
    with qtbot.waitSignal(canvas.mask_changed, timeout=TIMEOUT):
        centre = canvas.rect().center()
        QTest.mousePress(canvas, Qt.MouseButton.LeftButton, pos=centre)
        QTest.mouseMove(canvas, centre + QPoint(20, 10))
        QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=centre + QPoint(20, 10))
    mask = canvas.mask()
    assert canvas.has_mask() and mask is not None and mask.max() > 0.5 and mask.min() < 0.5
    set_panel(studio, steps=4, seed=3, seed_mode="fixed")
    jobs = []
    studio.controller.queue.changed.connect(lambda: jobs.append(studio.controller.queue.running))
    result = settle(studio, qtbot, studio.controller.generate)
    job = next(j for j in jobs if j is not None)
    assert job.mask is not None and job.init_image is not None  # a painted mask inpaints
    assert isinstance(result, JobResult) and "Mask blur" in result.parameters


def test_export_and_read_back_parameters_then_drop_restores_settings(studio, qtbot, tmp_path):
    set_panel(studio, prompt="green square", negative_prompt="red", steps=5, seed=42, seed_mode="fixed")
    result = settle(studio, qtbot, studio.controller.generate)
    png = studio.controller.files.export_image(tmp_path / "out.png")
    assert read_parameters(png) == result.parameters
    text = read_parameters(png)
    assert text.startswith("green square\nNegative prompt: red\n") and "Seed: 42" in text and "Steps: 5" in text
    for name in ("out.jpg", "out.webp"):
        assert read_parameters(studio.controller.files.export_image(tmp_path / name)) == result.parameters
    from PIL import Image

    for name in ("run.gif", "run.webp"):
        with Image.open(studio.controller.files.export_run(tmp_path / name)) as animation:
            # Five steps and the result; GIF merges identical neighbours (the last step often is the result).
            assert animation.is_animated and 3 <= animation.n_frames <= 6 and animation.size == (256, 256)
    set_panel(studio, prompt="something else", steps=9, seed=1)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    drop = QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(studio.controller.files.settings_restored, timeout=TIMEOUT):
        studio.window.dropEvent(drop)  # QApplication routes synthetic drops only inside a real drag
    values = studio.window.panel.values()
    assert (values.prompt, values.negative_prompt, values.steps, values.seed) == ("green square", "red", 5, 42)
    assert values.seed_mode == "fixed"


def test_history_survives_a_restart_and_delete_works(qtbot, tmp_path):
    first = make_studio(qtbot, tmp_path)
    set_panel(first, prompt="yellow ring", steps=3, seed=5, seed_mode="fixed")
    settle(first, qtbot, first.controller.generate)
    settle(first, qtbot, first.controller.generate)
    first.controller.shutdown()
    first.window.close()

    second = make_studio(qtbot, tmp_path)
    model = second.window.history_view.model
    assert model.rowCount() == 2
    assert model.entry(0).values.prompt == "yellow ring" and "Seed: 5" in model.entry(0).parameters
    second.window.history_view.select_row(0)
    second.window.history_view.delete_button.click()
    assert model.rowCount() == 1
    second.controller.shutdown()
    second.window.close()

    third = make_studio(qtbot, tmp_path)
    assert third.window.history_view.model.rowCount() == 1
    third.controller.shutdown()


def test_a_corrupt_settings_file_does_not_stop_the_app(qtbot, tmp_path):
    paths = StudioPaths.under(tmp_path)
    paths.config_dir.mkdir(parents=True)
    paths.settings_file.write_text("{ this is not json")
    studio = make_studio(qtbot, tmp_path)
    assert "Settings could not be read" in studio.window.banner.text()
    assert list(paths.config_dir.glob("settings.json.corrupt-*"))
    set_panel(studio, steps=2)
    assert isinstance(settle(studio, qtbot, studio.controller.generate), JobResult)
    studio.controller.shutdown()
    assert json.loads(paths.settings_file.read_text())["panel"]["steps"] == 2


def test_engine_errors_are_readable_messages_and_the_app_keeps_working(studio, qtbot):
    set_panel(studio, steps=3, width=40, height=32)
    studio.controller.catalog = None
    # A bad request (size not a multiple of the model's 8 px is caught by the engine).
    studio.window.panel.width_box.setSingleStep(1)
    studio.window.panel.width_box.setValue(36)
    failure = settle(studio, qtbot, studio.controller.generate)
    assert isinstance(failure, JobFailure) and failure.field == "width"
    assert "multiple of 8" in studio.window.banner.text()
    assert studio.window.panel.width_box.property("error") is True
    set_panel(studio, width=32, model="no-such-model")
    failure = settle(studio, qtbot, studio.controller.generate)
    assert "no-such-model" in studio.window.banner.text()
    set_panel(studio, model="toy")
    assert isinstance(settle(studio, qtbot, studio.controller.generate), JobResult)
    assert studio.window.panel.width_box.property("error") is False


def test_progress_shows_step_of_n(studio, qtbot):
    set_panel(studio, steps=6)
    texts = []
    studio.controller.timeline.frame_added.connect(
        lambda *_: texts.append(studio.window.status.progress_label.text()))
    settle(studio, qtbot, studio.controller.generate)
    assert texts[-1].startswith("Step 6 of 6") and "it/s" in texts[-1] and "left" in texts[-1]


def test_classifier_scale_is_enabled_only_for_a_model_with_a_classifier(studio):
    panel = studio.window.panel
    assert panel.classifier.isEnabled()  # the toy model has a classifier
    panel.set_model_info(ModelChoice("other", "Other", has_classifier=False))
    assert not panel.classifier.isEnabled() and panel.values().classifier_scale == 0.0


def test_clip_skip_is_enabled_only_for_a_model_that_reads_clip_layers(studio):
    panel = studio.window.panel
    set_panel(studio, clip_skip=2)
    assert not panel.clip_skip.isEnabled() and panel.values().clip_skip == 1  # the toy model: ignored, sent as 1
    panel.set_model_info(ModelChoice("sd:x", "SD", has_classifier=False, clip_skip=True))
    assert panel.clip_skip.isEnabled() and panel.values().clip_skip == 2


def test_autosave_restores_canvas_mask_and_panel_after_a_crash(qtbot, tmp_path):
    first = make_studio(qtbot, tmp_path)
    canvas = first.window.canvas
    image = np.zeros((32, 32, 3), np.uint8)
    image[8:24, 8:24] = (200, 30, 30)
    canvas.set_image(image)
    mask = np.zeros((32, 32), np.float32)
    mask[:16] = 1
    canvas.set_mask(mask)
    set_panel(first, prompt="purple stripes", steps=13)
    autosave = first.controller.autosave
    qtbot.waitUntil(lambda: autosave.file.exists() and autosave.load().panel.prompt == "purple stripes",
                    timeout=TIMEOUT)
    first.engine.stop()  # no shutdown(): as after kill -9, only the autosave is on disk

    second = make_studio(qtbot, tmp_path)
    assert np.array_equal(second.window.canvas.image(), image)
    assert np.allclose(second.window.canvas.mask(), mask, atol=1 / 255)
    values = second.window.panel.values()
    assert values.prompt == "purple stripes" and values.steps == 13
    second.controller.shutdown()


def test_a_nan_from_the_model_is_a_message_and_the_app_keeps_working(studio, qtbot, monkeypatch):
    from studio.engine.runner import NonFiniteError, Runner

    real_run = Runner.run

    def broken_run(self, request, **kwargs):
        raise NonFiniteError("the model produced NaN or infinite values at step 2; try a lower CFG scale")

    monkeypatch.setattr(Runner, "run", broken_run)
    failure = settle(studio, qtbot, studio.controller.generate)
    assert isinstance(failure, JobFailure) and "NaN" in studio.window.banner.text()
    monkeypatch.setattr(Runner, "run", real_run)
    set_panel(studio, steps=2)
    assert isinstance(settle(studio, qtbot, studio.controller.generate), JobResult)


def test_play_animates_the_run_and_copy_puts_the_image_on_the_clipboard(studio, qtbot):
    set_panel(studio, steps=6, seed=1, seed_mode="fixed")
    result = settle(studio, qtbot, studio.controller.generate)
    view = studio.window.timeline_view
    view.slider.setValue(0)
    view.play_button.click()
    qtbot.waitUntil(lambda: not view.play_button.isChecked(), timeout=TIMEOUT)
    assert studio.controller.timeline.position == studio.controller.timeline.position_count() - 1
    studio.controller.files.copy_image()
    copied = QGuiApplication.clipboard().image()
    assert (copied.width(), copied.height()) == result.image.shape[1::-1]


def test_a_branch_with_new_settings_continues_on_the_new_schedule(studio, qtbot):
    set_panel(studio, prompt="red circle", steps=10, seed=7, seed_mode="fixed")
    first = settle(studio, qtbot, studio.controller.generate)
    set_panel(studio, prompt="blue circle", steps=20, cfg_scale=3.0)
    branch = settle(studio, qtbot, lambda: studio.controller.branch(first.run_id, 2))
    assert isinstance(branch, JobResult) and branch.parent == (first.run_id, 2)
    child = studio.controller.timeline.current
    assert len(child.frames) == child.total and child.first_own_step == 3
    assert "blue circle" in branch.parameters and "Steps: 20" in branch.parameters


def test_picking_a_model_applies_its_recommended_settings(studio, qtbot):
    panel = studio.window.panel
    set_panel(studio, width=48, height=40, steps=7, cfg_scale=1.5)
    index = panel.model.findData("toy")
    panel.model.setCurrentIndex(-1 if index else 0)  # leave toy, then pick it again as a user would
    panel.model.setCurrentIndex(index)
    qtbot.waitUntil(lambda: panel.values().steps == 20, timeout=TIMEOUT)
    values = panel.values()
    assert (values.width, values.height, values.cfg_scale) == (32, 32, 5.0)
    assert "recommended settings" in studio.window.statusBar().currentMessage()


def test_the_prompt_hint_shows_only_for_a_model_that_can_say_something(studio, qtbot):
    panel = studio.window.panel
    set_panel(studio, prompt="kitten")
    qtbot.wait(400)  # past the debounce, and the toy model has nothing to say
    assert not panel.prompt_hint.isVisibleTo(studio.window)


@pytest.mark.skipif(not __import__("studio.engine.models.embedded", fromlist=["x"]).embedded_weights_present(),
                    reason="embedded weights not in resources/")
def test_the_embedded_model_names_the_closest_emoji_under_the_prompt(qtbot, tmp_path):
    s = make_studio(qtbot, tmp_path)
    try:
        panel = s.window.panel
        set_panel(s, prompt="kitten")
        panel.model.setCurrentIndex(panel.model.findData("embedded"))  # as a user picks it
        qtbot.waitUntil(lambda: "cat" in panel.prompt_hint.text(), timeout=60_000)
        assert panel.prompt_hint.isVisibleTo(s.window)
        assert "Animals & Nature" in panel.prompt_hint.text()
        panel.prompt.setPlainText("automobile")
        qtbot.waitUntil(lambda: "automobile" in panel.prompt_hint.text(), timeout=TIMEOUT)
    finally:
        s.controller.shutdown()


def test_a_dropped_image_restores_its_settings_at_once_while_a_run_is_going(studio, qtbot, tmp_path):
    # The parameters are parsed on the UI thread: no wait behind the engine thread's running job.
    from studio.io.png import save_image

    png = save_image(tmp_path / "earlier.png", np.zeros((32, 32, 3), np.uint8),
                     "pink star\nSteps: 7, Sampler: Euler, Schedule type: Karras, CFG scale: 3, Seed: 9, Size: 32x32")
    set_panel(studio, prompt="long run", steps=400, width=128, height=128, seed=1, seed_mode="fixed")
    studio.controller.generate()
    qtbot.waitUntil(lambda: bool(studio.controller.timeline.current and studio.controller.timeline.current.frames),
                    timeout=TIMEOUT)
    studio.controller.files.open_file(str(png))
    values = studio.window.panel.values()
    assert (values.prompt, values.steps, values.sampler, values.karras, values.seed) == ("pink star", 7, "euler",
                                                                                         True, 9)
    assert studio.controller.queue.running is not None  # restored while the engine is still busy
    with qtbot.waitSignal(studio.controller.job_settled, timeout=TIMEOUT):
        studio.controller.cancel()


def test_restored_settings_are_fitted_to_the_model_with_a_notice(studio, qtbot, tmp_path):
    # The toy model draws 32x32 and reads no CLIP layers; UniPC is not a studio sampler.
    from studio.io.png import save_image

    text = ("cat\nSteps: 99999999999, Sampler: UniPC, Schedule type: Karras, CFG scale: 6, Seed: 12, "
            "Size: 512x512, Clip skip: 2")
    png = save_image(tmp_path / "a1111.png", np.zeros((8, 8, 3), np.uint8), text)
    set_panel(studio, sampler="heun", steps=5)
    studio.controller.files.open_file(str(png))
    values = studio.window.panel.values()
    assert (values.prompt, values.sampler, values.karras, values.cfg_scale, values.seed) == ("cat", "heun", True,
                                                                                              6.0, 12)
    assert (values.steps, values.width, values.height, values.clip_skip) == (1000, 32, 32, 1)
    banner = studio.window.banner.text()
    assert banner.startswith("Settings restored from a1111.png.")
    for part in ("UniPC is not in this studio", "Size 512x512 is far from", "Clip skip 2 does not apply",
                 "Steps 99999999999 is more than 1000"):
        assert part in banner
