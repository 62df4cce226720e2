"""The X/Y/Z plot dialog in the real window, offscreen, on the toy model."""

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton

from studio.io.png import read_parameters
from studio.state.jobs import JobResult
from studio.state.paths import StudioPaths
from studio.state.xyz_plot import read_plot_description

TIMEOUT = 30_000


@pytest.fixture
def studio(qtbot, tmp_path):
    from studio.app import create_studio

    s = create_studio(StudioPaths.under(tmp_path))
    qtbot.addWidget(s.window)
    s.window.show()
    panel = s.window.panel
    panel.set_values(panel.values().with_changes(model="toy", prompt="red circle", steps=3, width=24, height=16,
                                                 seed=5, seed_mode="fixed"))
    s.start_engine()
    qtbot.waitUntil(lambda: s.window.status.engine_label.text().startswith("Ready")
                    and panel.model.currentData() == "toy", timeout=60_000)
    yield s
    s.controller.shutdown()


def widgets(dialog):
    find = dialog.findChild
    return ([find(QComboBox, f"xyz{c}Type") for c in "XYZ"], [find(QLineEdit, f"xyz{c}Values") for c in "XYZ"],
            find(QLabel, "xyzCount"), find(QLabel, "xyzError"), find(QPushButton, "xyzRun"))


def test_typed_axes_count_cells_show_errors_inline_and_run_into_a_grid_in_history(studio, qtbot):
    settled = []
    studio.controller.job_settled.connect(settled.append)
    QTest.mouseClick(studio.window.panel.xyz_button, Qt.MouseButton.LeftButton)
    dialog = studio.controller.xyz.dialog
    assert dialog is not None and dialog.isVisible()
    types, edits, count, error, run = widgets(dialog)
    assert types[0].currentText() == "Steps" and dialog.focusWidget() is edits[0]
    assert error.text() == "Type the X values." and not run.isEnabled()  # a hint, not yet an error
    assert "now 3" in edits[0].placeholderText()  # the panel's value as the hint
    QTest.keyClicks(edits[0], "2, 4, x")
    assert "X axis: Steps: 'x' is not a whole number" in error.text() and error.isVisible()
    assert not run.isEnabled() and count.text() == "cells: –"
    QTest.keyClick(edits[0], Qt.Key.Key_Backspace)
    QTest.keyClick(edits[0], Qt.Key.Key_Backspace)
    QTest.keyClick(edits[0], Qt.Key.Key_Backspace)
    assert count.text() == "cells: 2" and run.isEnabled() and error.isHidden()
    types[1].setCurrentText("Sampler")
    assert "DPM++ 2M" in edits[1].placeholderText()
    QTest.keyClicks(edits[1], "Euler, euler a")
    assert count.text() == "cells: 4  (2 × 2)"
    with qtbot.waitSignal(studio.controller.xyz.grid_added, timeout=TIMEOUT) as blocker:
        QTest.mouseClick(run, Qt.MouseButton.LeftButton)
        assert len(studio.controller.queue) == 4 and not dialog.isVisible()
    grid_entry = blocker.args[0]
    results = [r for r in settled if isinstance(r, JobResult)]
    assert [(r.values.steps, r.values.sampler) for r in results] == [(2, "euler"), (4, "euler"), (2, "euler_a"),
                                                                    (4, "euler_a")]
    history = studio.window.history_view.model
    assert history.rowCount() == 5 and history.entry(0) is grid_entry  # four cells, then the grid
    assert len(studio.controller.timeline.runs()) == 4  # every cell is its own run
    assert read_plot_description(grid_entry.parameters) == [("Steps", "2, 4"), ("Sampler", "Euler, euler a")]
    studio.controller.history.writer.flush()
    assert read_plot_description(read_parameters(grid_entry.image_file)) is not None
    grid = grid_entry.load_image()
    assert np.array_equal(grid[-16:, -24:], results[-1].image)  # bottom right: Steps 4, Euler a, unscaled
    # The dialog reopens with the plot just run.
    studio.window.xyz_action.trigger()
    _, edits, count, _, _ = widgets(studio.controller.xyz.dialog)
    assert edits[1].text() == "Euler, euler a" and count.text() == "cells: 4  (2 × 2)"
    studio.controller.xyz.dialog.close()
    # Reusing the grid's settings from history brings its plot back too.
    studio.controller.xyz.rows = [("Seed", "1")]
    view = studio.window.history_view
    view.list.setCurrentIndex(history.index(0))
    view.reuse_button.click()
    assert studio.controller.xyz.rows == [("Steps", "2, 4"), ("Sampler", "Euler, euler a")]


def test_cancel_drops_the_plot_as_it_drops_a_batch(studio, qtbot):
    studio.window.panel.set_values(studio.window.panel.values().with_changes(steps=300, width=64, height=64))
    types, edits, _, _, run = widgets(studio.controller.xyz.open_dialog())
    types[0].setCurrentText("Seed")
    edits[0].setText("1-6")
    run.click()
    qtbot.waitUntil(lambda: studio.controller.timeline.current is not None
                    and len(studio.controller.timeline.current.frames) > 0, timeout=TIMEOUT)
    studio.controller.cancel()
    qtbot.waitUntil(lambda: "no grid was made" in studio.window.banner.text(), timeout=TIMEOUT)
    assert len(studio.controller.queue) == 0 and studio.controller.xyz.runs == []
    assert studio.window.history_view.model.rowCount() == 0
    # Before the engine reports its catalog, the dialog still knows the sampler names.
    studio.controller.catalog = None
    assert ("euler_a", "Euler a") in studio.controller.xyz.choices().samplers
