"""ControlNet units in the panel's values: JSON round trip, limits, restored parameters, and the jobs they make."""

import numpy as np
import pytest

from studio.state.control_units import CONTROL_PREPROCESSORS, CONTROL_UNITS, MAX_CONTROL_WEIGHT, ControlSettings
from studio.state.job_builder import build_branch, build_jobs
from studio.state.panel_values import PanelValues

UNIT = ControlSettings(True, "control_sd15_scribble", "scribble", 0.8, 0.1, 0.9)


def values_with(*units: ControlSettings) -> PanelValues:
    units = units + (ControlSettings(),) * (CONTROL_UNITS - len(units))
    return PanelValues(width=32, height=24, controlnets=units)


def test_the_panels_choices_and_limits_are_the_engines():
    from studio.engine import request

    assert MAX_CONTROL_WEIGHT == request.MAX_CONTROL_WEIGHT
    preprocess = pytest.importorskip("studio.engine.control_preprocess")  # the engine's preprocessors
    assert CONTROL_PREPROCESSORS == preprocess.PREPROCESSORS


def test_units_round_trip_through_json():
    values = values_with(UNIT, ControlSettings(False, "canny_model", "canny", 1.5, 0.0, 0.5))
    back, notices = PanelValues.from_json_with_notices(values.to_json())
    assert back == values and notices == ()
    assert PanelValues.from_json({}).controlnets == (ControlSettings(),) * CONTROL_UNITS


def test_saved_units_out_of_range_are_brought_in_with_a_notice():
    saved = {"controlnets": [{"enabled": True, "model": "m", "weight": 1e9, "start": 0.9, "end": 0.2,
                              "preprocessor": "depth_leres"}, "junk", {"weight": "heavy"}, {"enabled": True}]}
    values, notices = PanelValues.from_json_with_notices(saved)
    first = values.controlnets[0]
    assert (first.weight, first.start, first.end, first.preprocessor) == (MAX_CONTROL_WEIGHT, 0.0, 1.0, "none")
    text = " ".join(notices)
    assert "depth_leres" in text and "start 0.9 is not before end 0.2" in text and "not a unit" in text
    assert "heavy" in text and "the panel has 3" in text
    assert len(values.controlnets) == CONTROL_UNITS
    for bad in (None, 5, "units", [1, 2]):  # never an error: kept, with a notice
        values, notices = PanelValues.from_json_with_notices({"controlnets": bad})
        assert values.controlnets == PanelValues().controlnets and notices


def test_restored_parameters_switch_on_the_units_they_name_and_off_the_others():
    from studio.engine.request import ControlUnit

    base = values_with(ControlSettings(True, "old", "canny"), ControlSettings(True, "other", "none"))
    restored = PanelValues.from_request_fields(
        {"controlnets": (ControlUnit("control_sd15_scribble", None, "scribble", 0.8, 0.1, 0.9),)}, base)
    assert restored.controlnets[0] == UNIT
    assert restored.controlnets[1] == ControlSettings(False, "other", "none")  # off, its settings kept
    none = PanelValues.from_request_fields({"controlnets": ()}, base)
    assert not any(unit.enabled for unit in none.controlnets)


def test_jobs_carry_the_control_layer_at_the_request_size_for_each_unit_that_is_on():
    control = np.zeros((48, 64, 3), np.uint8)
    control[20:28] = 255
    ids = iter(range(100))
    values = values_with(UNIT, ControlSettings(), ControlSettings(True, "canny_model", "canny"))
    jobs = build_jobs(values.with_changes(batch_count=2, seed_mode="fixed"), None, None, None, lambda: next(ids),
                      control)
    assert len(jobs) == 2
    first, off, third = jobs[0].control_images
    assert off is None and first is third and first.shape == (24, 32, 3) and first.dtype == np.uint8
    assert first[12].min() > 200 and first[0].max() == 0
    # Nothing drawn, or no unit on: no images (the engine names a unit that is on and has none).
    assert build_jobs(values, None, None, None, lambda: 7)[0].control_images == ()
    assert build_jobs(PanelValues(), None, None, None, lambda: 7, control)[0].control_images == ()
    branch = build_branch(values, values, 3, 5, None, None, 9, control)
    assert branch.control_images[0].shape == (24, 32, 3)


def test_engine_session_builds_the_requests_control_units():
    from studio.state.jobs import Job
    from studio.worker.job_request import control_units

    image = np.full((24, 32, 3), 255, np.uint8)
    values = values_with(UNIT, ControlSettings(False, "x"), ControlSettings(True, "canny_model", "canny", 1.2))
    units = control_units(Job(1, values, control_images=(image, None, image)))
    assert [(u.model, u.preprocessor, u.weight, u.start, u.end) for u in units] == [
        ("control_sd15_scribble", "scribble", 0.8, 0.1, 0.9), ("canny_model", "canny", 1.2, 0.0, 1.0)]
    assert all(u.image is image for u in units)
    lacking = control_units(Job(1, values))  # nothing drawn: the request's check names the unit
    assert [u.image for u in lacking] == [None, None]
