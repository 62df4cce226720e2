"""The ControlNet group of the prompt panel: units shown as they are used, values in and out, and the request."""

import numpy as np
import pytest

from studio.engine.request import GenerationRequest, validate_request
from studio.state.control_units import ControlSettings
from studio.state.job_builder import build_jobs
from studio.state.panel_values import PanelValues
from studio.ui.prompt_panel import PromptPanel
from studio.worker.job_request import control_units

MODELS = ["control_sd15_canny", "control_sd15_scribble"]


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.controlnets.set_models(MODELS)
    widget.show()
    return widget


def test_a_unit_shows_its_settings_once_on_and_the_next_unit_once_used(panel):
    first, second, third = panel.controlnets.units
    assert first.isVisible() and not first.details.isVisible()
    assert not second.isVisible() and not third.isVisible()
    assert not panel.controlnets.hint.isVisible()
    first.enabled.click()
    assert first.details.isVisible() and second.isVisible() and not third.isVisible()
    assert panel.controlnets.hint.isVisible()  # says where the control image comes from
    assert [first.model.itemData(i) for i in range(first.model.count())] == MODELS


def test_units_round_trip_through_the_widgets(panel):
    units = (ControlSettings(True, "control_sd15_scribble", "scribble", 0.75, 0.1, 0.85),
             ControlSettings(True, "control_sd15_canny", "canny", 1.5, 0.0, 0.5),
             ControlSettings(False, "not_on_disk", "lineart_strokes", 1.0, 0.2, 1.0))
    values = PanelValues(controlnets=units)
    panel.set_values(values)
    assert panel.values() == values
    assert panel.controlnets.units[2].isVisible()  # used (it names a model), though off
    panel.set_values(PanelValues())
    assert panel.values().controlnets == PanelValues().controlnets


def test_a_unit_on_without_a_model_is_said_at_once(panel):
    first = panel.controlnets.units[0]
    first.enabled.click()
    first.model.setCurrentIndex(-1)
    assert panel.problems()["controlnets"] == "ControlNet unit 1: choose a ControlNet model."
    assert first.model.property("error") is True
    first.model.setCurrentIndex(1)
    assert "controlnets" not in panel.problems() and first.model.property("error") is False
    panel.mark_field("controlnets")  # an engine error about the units outlines their pickers
    assert first.model.property("error") is True


def test_the_panels_units_and_the_control_layer_reach_the_request(panel):
    first = panel.controlnets.units[0]
    first.enabled.click()
    first.model.setCurrentIndex(first.model.findData("control_sd15_scribble"))
    first.preprocessor.setCurrentIndex(first.preprocessor.findData("scribble"))
    first.weight.setValue(0.6)
    first.end.setValue(0.8)
    values = panel.values().with_changes(width=32, height=32, seed_mode="fixed")
    layer = np.zeros((64, 64, 3), np.uint8)
    layer[30:34] = 255
    job = build_jobs(values, None, None, None, lambda: 1, layer)[0]
    request = GenerationRequest(**job.values.request_fields(), controlnets=control_units(job))
    validate_request(request)
    (unit,) = request.controlnets
    assert (unit.model, unit.preprocessor, unit.weight, unit.start, unit.end) == (
        "control_sd15_scribble", "scribble", 0.6, 0.0, 0.8)
    assert unit.image.shape == (32, 32, 3) and unit.image[16].min() > 200 and unit.image[0].max() == 0
