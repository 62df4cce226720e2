"""The prompt panel inside the real window: what shows at the default size, and the seed a Random run used."""

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QRect
from test_ui_studio import TIMEOUT, make_studio, settle

from studio.state.jobs import JobResult
from studio.state.paths import StudioPaths

# What MainWindow picks on a 1600x1000 screen (94 % x 92 %) and on a 1366x768 laptop.
DEFAULT_SIZES = [(1504, 920), (1284, 706)]


@pytest.fixture
def themed(qapp):
    """The dark theme, as the app starts with (its paddings decide what fits); put back afterwards.

    Setting an application style sheet re-polishes every widget that exists, and the windows earlier
    tests closed still exist: deleted first, the theme costs milliseconds instead of ~10 s each way
    late in a full run."""
    for widget in qapp.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    palette, sheet, style = qapp.palette(), qapp.styleSheet(), qapp.style().name()
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)


@pytest.mark.parametrize("size", DEFAULT_SIZES)
def test_batch_strength_and_feather_are_in_view_at_the_default_window_size(qtbot, tmp_path, themed, size):
    from studio.app import create_studio

    studio = create_studio(StudioPaths.under(tmp_path), themed)
    window, panel = studio.window, studio.window.panel
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    viewport = panel.scroll.viewport()
    seen = QRect(0, 0, viewport.width(), viewport.height())
    for box in (panel.batch, panel.strength, panel.feather, panel.width_box, panel.seed):
        corner = box.mapTo(viewport, box.rect().bottomRight())
        assert seen.contains(corner), f"{box.objectName()} is below the fold at {size}"
    assert panel.advanced_button.isVisibleTo(window)


def test_random_seed_mode_shows_the_seed_each_run_used(qtbot, tmp_path):
    studio = make_studio(qtbot, tmp_path)
    try:
        panel = studio.window.panel
        panel.set_values(panel.values().with_changes(steps=2, seed=1, seed_mode="random"))
        first = settle(studio, qtbot, studio.controller.generate)
        assert isinstance(first, JobResult)
        assert panel.values().seed == first.values.seed and panel.seed.value() == first.values.seed
        assert panel.values().seed_mode == "random"  # still random next time
        second = settle(studio, qtbot, studio.controller.generate, TIMEOUT)
        assert second.values.seed != first.values.seed  # drawn afresh, not the shown one
        assert panel.seed.value() == second.values.seed
    finally:
        studio.controller.shutdown()


def test_the_advanced_fold_is_kept_across_a_restart(qtbot, tmp_path):
    from studio.app import create_studio

    first = create_studio(StudioPaths.under(tmp_path))
    qtbot.addWidget(first.window)
    panel = first.window.panel
    assert not panel.advanced.isVisibleTo(panel)  # folded on a first start
    panel.advanced_button.click()
    assert panel.advanced.isVisibleTo(panel) and panel.advanced_open()
    first.controller.shutdown()
    second = create_studio(StudioPaths.under(tmp_path))
    qtbot.addWidget(second.window)
    assert second.window.panel.advanced_open() and second.window.panel.advanced.isVisibleTo(second.window.panel)
    second.window.panel.advanced_button.click()
    second.controller.shutdown()
    third = create_studio(StudioPaths.under(tmp_path))
    qtbot.addWidget(third.window)
    assert not third.window.panel.advanced_open()


def test_dynamic_thresholding_from_the_panel_reaches_the_run_and_reads_back(qtbot, tmp_path):
    studio = make_studio(qtbot, tmp_path)
    try:
        panel = studio.window.panel
        panel.set_values(panel.values().with_changes(steps=2, seed=3, seed_mode="fixed"))
        panel.set_advanced_open(True)
        panel.threshold_on.click()  # as a user switches it on: the box shows Imagen's 0.995
        assert panel.values().dynamic_threshold == 0.995
        panel.threshold.setValue(0.9)
        result = settle(studio, qtbot, studio.controller.generate)
        assert isinstance(result, JobResult) and "Dynamic threshold: 0.9" in result.parameters
        panel.threshold_on.click()
        assert panel.values().dynamic_threshold is None
        studio.controller.files.restore_parameters(result.parameters, "x.png")
        assert panel.values().dynamic_threshold == 0.9 and panel.threshold_on.isChecked()
    finally:
        studio.controller.shutdown()
