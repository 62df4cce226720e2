"""The window's everyday flows, as a user meets them: status messages, shortcuts, cancel, branch, history."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from test_ui_studio import TIMEOUT, make_studio, set_panel, settle, shown_frame

from studio.state.jobs import JobFailure


@pytest.fixture
def studio(qtbot, tmp_path):
    s = make_studio(qtbot, tmp_path)
    yield s
    s.controller.shutdown()


def message_shown(window) -> str:
    """The status message a user can read: the label's text when it is visible and wide enough for it."""
    label = window.status.message_label
    fits = label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()
    return label.text() if label.isVisible() and fits else ""


def test_status_messages_are_visible_at_the_default_window_size(studio, qtbot):
    window = studio.window
    qtbot.waitExposed(window)
    QTest.keyClick(window.panel.prompt, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: message_shown(window) == "Image copied to the clipboard", timeout=1000)
    set_panel(studio, steps=3, seed=9, seed_mode="fixed")
    settle(studio, qtbot, studio.controller.generate)
    # The progress widgets give their room back once the run is over (the layout settles in the event loop).
    qtbot.waitUntil(lambda: message_shown(window).startswith("Done: 3 steps in"), timeout=1000)
    assert message_shown(window).endswith("(seed 9)")
    window.statusBar().clearMessage()
    assert window.status.message_label.text() == ""


def window_shortcuts(window):
    """The window's actions that answer a key anywhere in it (undo, redo and the canvas keys are the
    focused widget's own: in the prompt box Ctrl+Z undoes typing)."""
    return [a for a in window.actions()
            if a.shortcuts() and a.shortcutContext() == Qt.ShortcutContext.WindowShortcut]


class ClaimKeys(QObject):
    """Claims keys for the widget as QLineEdit does under the X11 key scheme (Ctrl+E: end of line), which
    the offscreen platform of the tests does not use."""

    def __init__(self, keys):
        super().__init__()
        self.keys = keys

    def eventFilter(self, watched, event):  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and QKeySequence(event.keyCombination()) in self.keys:
            event.accept()
            return True
        return False


def test_the_window_shortcuts_work_from_a_spin_box_the_prompt_box_and_a_combo(qtbot, tmp_path):
    from studio.state.history import HistoryModel, HistoryStore
    from studio.state.timeline import TimelineModel
    from studio.ui.main_window import MainWindow

    window = MainWindow(TimelineModel(), HistoryModel(HistoryStore(tmp_path)))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    fired = []
    actions = window_shortcuts(window)
    assert window.export_action in actions and window.generate_action in actions and len(actions) >= 9
    for action in actions:
        if action.receivers("2triggered(bool)") or action.receivers("2triggered()"):
            action.triggered.disconnect()  # no dialogs, no quitting: only which action a key reaches
        action.triggered.connect(lambda *_, a=action: fired.append(a))
    panel = window.panel
    keys = {action.shortcuts()[0] for action in actions}
    claimer = ClaimKeys(keys)
    for widget in (panel.steps, panel.steps.lineEdit(), panel.prompt, panel.sampler):
        widget.installEventFilter(claimer)
    for widget in (panel.steps, panel.prompt, panel.sampler):
        widget.setFocus()
        qtbot.waitUntil(widget.hasFocus, timeout=1000)
        for action in actions:
            key = action.shortcuts()[0][0]
            fired.clear()
            QTest.keyClick(widget, key.key(), key.keyboardModifiers())
            assert fired == [action], f"{action.shortcuts()[0].toString()} from {type(widget).__name__}"


def test_after_a_cancel_slider_banner_and_canvas_agree_on_the_last_step_that_ran(studio, qtbot):
    set_panel(studio, steps=200, width=64, height=64, seed=1, seed_mode="fixed")
    timeline, window = studio.controller.timeline, studio.window
    before = window.canvas.image().copy()

    def cancel_after_three_steps(*_):
        if timeline.current is not None and len(timeline.current.frames) == 3:
            studio.controller.cancel()

    timeline.frame_added.connect(cancel_after_three_steps)
    failure = settle(studio, qtbot, studio.controller.generate)
    assert isinstance(failure, JobFailure) and failure.cancelled
    track = timeline.current
    ran = len(track.frames)
    assert 3 <= ran < 200 and track.state == "cancelled"
    view = window.timeline_view
    assert view.slider.value() == ran - 1 and timeline.position == ran - 1
    assert view.step_label.text().startswith(f"Step {ran} of 200")
    assert window.banner.text() == f"Cancelled after step {ran} of 200."
    assert window.canvas.is_showing_frame() and np.array_equal(shown_frame(window.canvas), track.frames[-1])
    assert np.array_equal(window.canvas.image(), before)  # the document itself is untouched


def test_continue_is_offered_at_a_step_not_at_the_result(studio, qtbot):
    set_panel(studio, prompt="red circle", steps=6, seed=7, seed_mode="fixed")
    first = settle(studio, qtbot, studio.controller.generate)
    window, timeline = studio.window, studio.controller.timeline
    view, history = window.timeline_view, window.history_view.model
    assert timeline.position == len(timeline.current.frames)  # a finished run stops on its result
    assert not view.branch_button.isEnabled() and not window.branch_action.isEnabled()
    assert "Pick a step" in view.branch_button.toolTip()
    window.branch_action.trigger()  # Ctrl+B at the result: no run, no copy of the result in history
    view.branch_button.click()
    assert studio.controller.queue.running is None and len(studio.controller.queue) == 0
    assert history.rowCount() == 1 and len(timeline.runs()) == 1
    view.slider.setValue(5)  # the last step: continue with more steps
    assert view.branch_button.isEnabled() and window.branch_action.isEnabled()
    set_panel(studio, steps=9)
    branch = settle(studio, qtbot, window.branch_action.trigger)
    assert branch.parent == (first.run_id, 5) and "Steps: 9" in branch.parameters
    assert history.rowCount() == 2


def test_the_toy_test_model_is_listed_only_when_asked_for(studio, qtbot, monkeypatch):
    picker = studio.window.panel.model
    keys = lambda: [picker.itemData(i) for i in range(picker.count())]  # noqa: E731
    assert "toy" in keys()  # the tests ask for it (conftest)
    default = studio.controller.catalog.default_model
    set_panel(studio, model=default)  # as on a first start (a chosen model stays listed, whatever it is)
    monkeypatch.delenv("DIFFUSION_STUDIO_TEST_MODELS")
    with qtbot.waitSignal(studio.engine.ready, timeout=TIMEOUT):
        studio.engine.rescan(())
    if default == "toy":  # no embedded weights here: the toy model is all there is, so it stays
        assert keys() == ["toy"]
    else:
        assert "toy" not in keys() and default in keys()


def test_a_history_delete_can_be_undone_and_captions_are_whole(studio, qtbot):
    window = studio.window
    view, history = window.history_view, window.history_view.model
    long_prompt = "a red apple on a wooden table beside a blue cup, morning light"
    set_panel(studio, prompt=long_prompt, steps=2, seed=1, seed_mode="fixed")
    settle(studio, qtbot, studio.controller.generate)
    set_panel(studio, prompt="green tree", steps=2)
    settle(studio, qtbot, studio.controller.generate)
    assert history.data(history.index(1)) == long_prompt  # the whole caption: the view wraps and elides it
    assert long_prompt in history.data(history.index(1), Qt.ItemDataRole.ToolTipRole) and view.list.wordWrap()
    doomed = history.entry(1)
    canvas_undo = window.canvas.undo_stack().index()

    view.select_row(1)
    view.list.setFocus()
    QTest.keyClick(view.list, Qt.Key.Key_Delete)
    assert history.rowCount() == 1 and view.undo_button.isVisibleTo(window)
    assert window.statusBar().currentMessage().startswith("Deleted 1 image from the history")
    QTest.keyClick(view.list, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert history.rowCount() == 2 and history.entry(1).entry_id == doomed.entry_id
    assert view.selected().entry_id == doomed.entry_id and not view.undo_button.isVisibleTo(window)
    assert window.canvas.undo_stack().index() == canvas_undo  # the history's Ctrl+Z, not the canvas's

    view.select_row(1)
    view.delete_button.click()
    view.undo_button.click()
    assert history.rowCount() == 2
    view.select_row(1)
    view.delete_button.click()
    studio.controller.shutdown()  # closing the window makes the delete final
    assert not doomed.image_file.exists() and not doomed.meta_file.exists()


def test_export_dialogs_propose_a_name_from_prompt_and_seed_in_the_last_folder(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    asked, answers = [], []

    def save_dialog(parent, title, proposed, filters):
        asked.append(proposed)
        return answers.pop(0), filters.split(";;")[0]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_dialog))
    home = tmp_path / "home"
    first = make_studio(qtbot, home)
    set_panel(first, prompt="Red heart, glossy!", steps=2, seed=1234, seed_mode="fixed")
    settle(first, qtbot, first.controller.generate)
    exports = tmp_path / "exports"
    exports.mkdir()
    answers += [str(exports / "mine.png"), str(exports / "run.gif")]
    first.window.export_action.trigger()
    assert asked[0].endswith("/red-heart-glossy-1234.png") and not asked[0].startswith(str(exports))
    assert (exports / "mine.png").exists()
    first.window.export_animation_action.trigger()
    assert asked[1] == str(exports / "red-heart-glossy-1234-run.gif")  # the folder of the last export
    first.controller.shutdown()
    first.window.close()

    second = make_studio(qtbot, home)  # remembered across sessions
    answers.append("")  # the user cancels
    second.window.export_action.trigger()
    assert asked[2] == str(exports / "image.png")  # no parameters known for the restored canvas
    second.controller.shutdown()


def test_a_number_typed_just_before_ctrl_enter_counts(studio, qtbot):
    set_panel(studio, steps=20, seed=1, seed_mode="fixed")
    steps = studio.window.panel.steps
    steps.setFocus()
    steps.selectAll()
    QTest.keyClicks(steps, "3")
    ctrl_enter = lambda: QTest.keyClick(steps, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # noqa: E731
    result = settle(studio, qtbot, ctrl_enter)
    assert result.values.steps == 3


def test_history_captions_wrap_on_two_lines_and_elide_the_rest(qtbot):
    from PySide6.QtWidgets import QLabel

    from studio.ui.history_caption import caption

    metrics = QLabel().fontMetrics()
    width = 112
    text = "a red apple on a wooden table beside a blue cup in the soft light of an early summer morning"
    lines = caption(text, metrics, width).split("\n")
    assert len(lines) == 2 and lines[1].endswith("…") and text.startswith(lines[0])
    assert all(metrics.horizontalAdvance(line) <= width for line in lines)
    assert caption("green tree", metrics, width) == "green tree"
    assert caption("two lines " * 2, metrics, 60).count("\n") == 1 and "…" not in caption("two lines", metrics, 60)
