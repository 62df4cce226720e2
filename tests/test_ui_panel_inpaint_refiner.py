"""Inpainting options and the SDXL refiner in the prompt panel: widgets, enabling, settings and the request."""

import numpy as np
import pytest

from studio.engine.request import (
    INPAINT_AREAS,
    MASKED_CONTENTS,
    MAX_INPAINT_PADDING,
    GenerationRequest,
    validate_request,
)
from studio.state import panel_limits
from studio.state.autosave import Autosave, Snapshot
from studio.state.job_builder import build_jobs
from studio.state.jobs import EngineCatalog, ModelChoice
from studio.state.panel_values import PanelValues
from studio.state.settings import Settings
from studio.ui.prompt_panel import PromptPanel

XL = ModelChoice("sd:/m/xl.safetensors", "xl (SDXL)", family="sdxl")
SD1 = ModelChoice("sd:/m/one.safetensors", "one (SD 1.x)", family="sd1")
REFINER = ModelChoice("sd:/m/refiner.safetensors", "refiner (SDXL refiner)", family="sdxl_refiner")
CATALOG = EngineCatalog((XL, SD1, REFINER), (("euler", "Euler"),), ("leading", "karras"), XL.key, "cpu")
CHANGED = dict(inpaint_area="masked", inpaint_padding=96, masked_content="latent_noise", refiner=REFINER.key,
               refiner_switch=0.65)


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_catalog(CATALOG)
    widget.set_model_info(XL)
    return widget


def test_the_panels_choices_are_the_engines():
    assert panel_limits.INPAINT_AREAS == INPAINT_AREAS
    assert panel_limits.MASKED_CONTENTS == MASKED_CONTENTS
    assert panel_limits.MAX_INPAINT_PADDING == MAX_INPAINT_PADDING


def test_refiners_are_offered_in_the_refiner_picker_only(panel):
    models = [panel.model.itemData(i) for i in range(panel.model.count())]
    refiners = [panel.refiner.itemData(i) for i in range(panel.refiner.count())]
    assert models == [XL.key, SD1.key]
    assert refiners == ["", REFINER.key]
    assert panel.refiner.itemText(0) == "None"


def test_new_fields_round_trip_through_the_widgets_and_reach_the_request(panel):
    values = PanelValues(model=XL.key, **CHANGED)
    panel.set_values(values)
    assert panel.inpaint_area.currentText() == "Only masked"
    assert panel.masked_content.currentText() == "Latent noise"
    assert panel.values() == values
    fields = panel.values().request_fields()
    assert {k: fields[k] for k in CHANGED} == CHANGED
    validate_request(GenerationRequest(**fields))  # the engine takes what the panel sends
    panel.refiner.setCurrentIndex(0)  # picking None after a restored refiner: none, not the restored one
    assert panel.values().refiner == ""


def test_padding_and_switch_are_enabled_only_when_they_mean_something(panel):
    panel.set_values(PanelValues(model=XL.key))
    assert not panel.inpaint_padding.isEnabled() and not panel.refiner_switch.isEnabled()
    panel.inpaint_area.setCurrentIndex(panel.inpaint_area.findData("masked"))
    panel.refiner.setCurrentIndex(panel.refiner.findData(REFINER.key))
    assert panel.inpaint_padding.isEnabled() and panel.refiner_switch.isEnabled()
    panel.refiner_switch.setValue(0.5)
    panel.refiner.setCurrentIndex(0)  # None: the switch is greyed, its value kept for next time
    assert not panel.refiner_switch.isEnabled()
    assert (panel.values().refiner, panel.values().refiner_switch) == ("", 0.5)


def test_the_refiner_is_off_for_a_model_that_is_not_sdxl(panel):
    panel.set_values(PanelValues(model=XL.key, refiner=REFINER.key))
    panel.set_model_info(SD1)
    assert not panel.refiner.isEnabled() and not panel.refiner_switch.isEnabled()
    assert panel.values().refiner == ""
    assert "SDXL" in panel.refiner.toolTip()
    panel.set_model_info(XL)
    assert panel.refiner.isEnabled() and panel.values().refiner == REFINER.key


def test_a_refiner_not_found_yet_survives_until_the_catalog_comes(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_model_info(XL)
    widget.set_values(PanelValues(refiner="sd:/elsewhere/r.safetensors"))
    assert widget.values().refiner == "sd:/elsewhere/r.safetensors"
    widget.set_catalog(CATALOG)
    assert widget.values().refiner == "sd:/elsewhere/r.safetensors"


@pytest.mark.parametrize(("saved", "restored"), [
    ({"inpaint_padding": 10**9, "refiner_switch": 1.0}, {"inpaint_padding": 1024, "refiner_switch": 0.99}),
    ({"inpaint_padding": -4, "refiner_switch": 0.0}, {"inpaint_padding": 0, "refiner_switch": 0.01}),
    ({"inpaint_area": "everything", "masked_content": 3}, {"inpaint_area": "whole", "masked_content": "original"}),
    ({"refiner": 5}, {"refiner": ""}),
])
def test_saved_values_are_brought_into_range(saved, restored):
    values, notices = PanelValues.from_json_with_notices(saved)
    assert {k: getattr(values, k) for k in restored} == restored
    assert len(notices) == len(saved)


def test_settings_and_autosave_keep_the_new_fields(tmp_path):
    values = PanelValues(**CHANGED)
    assert Settings.from_json(Settings(panel=values).to_json()).panel == values
    autosave = Autosave(tmp_path)
    autosave.save(Snapshot(np.zeros((8, 8, 3), np.uint8), None, values))
    assert autosave.recover()[0].panel == values


def test_parameters_restore_sets_them_over_the_panels(panel):
    fields = PanelValues(**CHANGED).request_fields()
    values = PanelValues.from_request_fields(fields, base=PanelValues())
    assert {k: getattr(values, k) for k in CHANGED} == CHANGED


def test_jobs_carry_them_to_the_engine():
    values = PanelValues(seed_mode="fixed", batch_count=2, **CHANGED)
    mask = np.zeros((64, 64), np.float32)
    mask[8:16, 8:16] = 1
    jobs = build_jobs(values, np.zeros((64, 64, 3), np.uint8), mask, None, iter(range(10)).__next__)
    for job in jobs:
        fields = job.values.request_fields()
        assert {k: fields[k] for k in CHANGED} == CHANGED


def test_the_model_key_prefix_is_the_engines():
    from studio.engine.models.registry import SD_PREFIX
    from studio.state.jobs import SD_PREFIX as STATE_PREFIX

    assert STATE_PREFIX == SD_PREFIX


def test_restoring_a_settings_line_sets_the_inpaint_options_and_finds_the_refiner_picked(qtbot, tmp_path):
    import dataclasses

    from test_ui_studio import make_studio

    studio = make_studio(qtbot, tmp_path)
    try:
        panel, controller = studio.window.panel, studio.controller
        controller.catalog = dataclasses.replace(controller.catalog, models=controller.catalog.models + (
            REFINER, ModelChoice("sd:/m/sd_xl_refiner_1.0.safetensors", "sd_xl_refiner_1.0 (SDXL refiner)",
                                 family="sdxl_refiner")))
        panel.set_catalog(controller.catalog)
        panel.set_model_info(XL)
        text = ("a cat\nSteps: 3, Sampler: Euler, Seed: 5, Size: 64x64, Inpaint area: Only masked, "
                "Masked area padding: 64, Masked content: latent noise, Refiner: sd_xl_refiner_1.0 [7440042bbd], "
                "Refiner switch at: 0.7")
        controller.files.restore_parameters(text, "x.png")
        got = panel.values()
        assert (got.inpaint_area, got.inpaint_padding, got.masked_content) == ("masked", 64, "latent_noise")
        assert (got.refiner, got.refiner_switch) == ("sd:/m/sd_xl_refiner_1.0.safetensors", 0.7)
        assert panel.refiner.currentText() == "sd_xl_refiner_1.0 (SDXL refiner)"
        controller.files.restore_parameters("a cat\nSteps: 3, Sampler: Euler, Seed: 5, Size: 64x64", "y.png")
        assert panel.values().refiner == ""  # made without a refiner: restored without one
    finally:
        studio.controller.shutdown()
