"""The timeline shows a refined run as one run, with a mark on the slider where the SDXL refiner took over."""

import numpy as np

from studio.state.jobs import JobResult, StepPreview
from studio.state.panel_values import PanelValues
from studio.state.timeline import TimelineModel
from studio.ui.marked_slider import MARK_COLOR
from studio.ui.timeline_view import TimelineView

VALUES = PanelValues()


def step(run_id, index, total=10, parent=None, switch=False):
    preview = np.full((16, 16, 3), index * 10, np.uint8)
    return StepPreview(run_id, run_id, index, total, 1.0 / (index + 1), preview, 0.01, parent, switch)


def run(model, run_id, steps, switch_at=None, parent=None):
    for i in steps:
        model.add_step(step(run_id, i, parent=parent, switch=i == switch_at), VALUES)
    model.finish(JobResult(run_id, run_id, VALUES, np.zeros((16, 16, 3), np.uint8), "p", "m", 10, 0.1, parent))


def has_mark_colour(view: TimelineView, x: int) -> bool:
    image = view.slider.grab().toImage()
    y = image.height() - 2
    return any(image.pixelColor(xx, y) == MARK_COLOR for xx in range(max(0, x - 1), x + 2))


def test_the_refiner_step_is_marked_on_the_slider_and_named_in_the_label(qtbot):
    model = TimelineModel()
    view = TimelineView(model)
    qtbot.addWidget(view)
    view.resize(900, view.height())
    view.show()
    run(model, 1, range(10))  # base only: no mark
    assert view.slider.marks() == () and view.slider.toolTip() == ""
    run(model, 2, range(10), switch_at=8)
    assert model.run(2).switch_step == 8
    assert view.slider.marks() == (8,) and "step 9" in view.slider.toolTip()
    model.set_position(7)
    assert "refiner" not in view.step_label.text()
    model.set_position(8)
    assert view.step_label.text().endswith("· refiner")
    x = view.slider.mark_x(8)
    assert view.slider.mark_x(0) < x < view.slider.mark_x(10)
    assert has_mark_colour(view, x) and not has_mark_colour(view, view.slider.mark_x(3))
    model.select(1)
    assert view.slider.marks() == ()


def test_branches_keep_the_mark_from_before_and_place_their_own_after(qtbot):
    model = TimelineModel()
    view = TimelineView(model)
    qtbot.addWidget(view)
    run(model, 1, range(10), switch_at=8)
    run(model, 2, range(9, 10), parent=(1, 8))  # branched after the switch: the parent's steps carry the mark
    assert model.run(2).switch_step == 8 and view.slider.marks() == (8,)
    run(model, 3, range(3, 10), parent=(1, 2), switch_at=6)  # before it: this run's own switch step
    assert model.run(3).switch_step == 6 and view.slider.marks() == (6,)
    run(model, 4, range(5, 10), parent=(1, 4))  # before it, refiner now off: no mark
    assert model.run(4).switch_step is None and view.slider.marks() == ()
