"""Hires fix in the window: the panel's group, its run in the timeline (the second pass at the larger size, marked
on the slider), branching from its steps, and its settings restored from AUTOMATIC1111's parameters text."""

import numpy as np
import pytest
from test_ui_prompt_panel import CATALOG, wheel
from test_ui_studio import make_studio, set_panel, settle, shown_frame

from studio.state.jobs import AdapterCatalog, AdapterChoice, JobResult, StepPreview
from studio.state.panel_values import PanelValues
from studio.state.timeline import TimelineModel
from studio.ui.prompt_panel import PromptPanel
from studio.ui.timeline_view import TimelineView


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_catalog(CATALOG)
    widget.resize(340, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_the_check_box_switches_hires_fix_and_its_settings_on(panel, qtbot):
    assert panel.values().hires_scale is None and panel.values().request_fields()["hires_scale"] == 0.0
    assert not any(w.isEnabled() for w in (panel.hires_scale, panel.hires_upscaler, panel.hires_steps,
                                           panel.hires_denoise))
    panel.hires_on.click()
    values = panel.values()
    assert (values.hires_scale, values.hires_upscaler, values.hires_steps, values.hires_denoise) == (
        2.0, "Latent", 0, 0.7)
    assert all(w.isEnabled() for w in (panel.hires_scale, panel.hires_upscaler, panel.hires_steps,
                                       panel.hires_denoise))
    panel.hires_upscaler.setCurrentIndex(panel.hires_upscaler.findData("Lanczos"))
    panel.hires_scale.setValue(1.5)
    fields = panel.values().request_fields()
    assert (fields["hires_scale"], fields["hires_upscaler"]) == (1.5, "Lanczos")
    # An upscaler model named by a PNG is kept (and offered) though the box did not list it.
    panel.set_values(panel.values().with_changes(hires_upscaler="4x-UltraSharp", hires_steps=12))
    assert panel.values().hires_upscaler == "4x-UltraSharp" and panel.hires_upscaler.currentText() == "4x-UltraSharp"


def test_the_upscaler_files_the_engine_found_are_offered(panel):
    panel.hires_on.click()
    panel.hires_upscaler.setCurrentIndex(panel.hires_upscaler.findData("Lanczos"))
    panel.set_adapters(AdapterCatalog(upscalers=(AdapterChoice("4x-UltraSharp", "/m/ESRGAN/4x-UltraSharp.pth"),)))
    names = [panel.hires_upscaler.itemData(i) for i in range(panel.hires_upscaler.count())]
    assert names[0] == "Latent" and names[-2:] == ["Lanczos", "4x-UltraSharp"]
    assert panel.values().hires_upscaler == "Lanczos"  # the choice made is kept
    panel.hires_upscaler.setCurrentIndex(names.index("4x-UltraSharp"))
    assert panel.values().request_fields()["hires_upscaler"] == "4x-UltraSharp"


def test_the_wheel_over_the_unfocused_hires_boxes_changes_nothing(panel, qtbot):
    panel.hires_on.click()
    before = panel.values()
    panel.generate_button.setFocus()
    for box in (panel.hires_scale, panel.hires_upscaler, panel.hires_steps, panel.hires_denoise):
        panel.scroll.ensureWidgetVisible(box)
        for _ in range(3):
            wheel(box)
    assert panel.values() == before


def test_settings_keep_hires_fix(qtbot):
    values = PanelValues(hires_scale=1.75, hires_steps=8, hires_upscaler="Lanczos", hires_denoise=0.4)
    assert PanelValues.from_json(values.to_json()) == values
    assert PanelValues.from_json(PanelValues().to_json()).hires_scale is None
    adapted, notices = PanelValues.from_json_with_notices({"hires_scale": 9.0, "hires_denoise": -1})
    assert (adapted.hires_scale, adapted.hires_denoise) == (4.0, 0.0) and len(notices) == 2


def step(run_id, index, size, hires=False, parent=None):
    return StepPreview(run_id, run_id, index, 6, 1.0, np.zeros((size, size, 3), np.uint8), 0.01, parent,
                       hires_start=hires)


def test_the_timeline_marks_where_the_hires_pass_began(qtbot):
    model = TimelineModel()
    view = TimelineView(model)
    qtbot.addWidget(view)
    for i in range(6):
        model.add_step(step(1, i, 16 if i < 4 else 32, hires=i == 4), PanelValues())
    assert model.run(1).hires_step == 4 and view.slider.marks() == (4,)
    assert "step 5" in view.slider.toolTip()
    model.set_position(3)
    assert "hires" not in view.step_label.text()
    model.set_position(5)
    assert view.step_label.text().endswith("· hires")
    model.add_step(step(2, 5, 32, parent=(1, 4)), PanelValues())  # a branch after the mark keeps it
    assert model.run(2).hires_step == 4
    model.add_step(step(3, 2, 16, parent=(1, 1)), PanelValues())  # a branch before it has none yet
    assert model.run(3).hires_step is None


def test_a_hires_run_in_the_window_scrubs_and_branches(qtbot, tmp_path):
    studio = make_studio(qtbot, tmp_path)
    try:
        panel, controller = studio.window.panel, studio.controller
        set_panel(studio, prompt="red circle", steps=4, seed=3, seed_mode="fixed", width=32, height=32,
                  hires_scale=2.0, hires_steps=3, hires_denoise=0.5)
        result = settle(studio, qtbot, controller.generate)
        assert isinstance(result, JobResult) and result.image.shape == (64, 64, 3)
        assert "Hires upscale: 2, Hires steps: 3, Hires upscaler: Latent" in result.parameters
        track = controller.timeline.current
        assert [f.shape[0] for f in track.frames] == [32] * 4 + [64] * 3 and track.hires_step == 4
        assert studio.window.canvas.image().shape == (64, 64, 3)
        controller.timeline.set_position(2)  # a first-pass step shows at its own size
        assert shown_frame(studio.window.canvas).shape == (32, 32, 3)
        controller.timeline.set_position(5)
        assert shown_frame(studio.window.canvas).shape == (64, 64, 3)
        view = studio.window.timeline_view
        for k in (1, 5):  # from a first-pass step and from a second-pass step: the same picture
            view.slider.setValue(k)
            branch = settle(studio, qtbot, view.branch_button.click)
            assert isinstance(branch, JobResult) and branch.parent == (result.run_id, k)
            assert np.array_equal(branch.image, result.image)
            assert [f.shape[0] for f in controller.timeline.current.frames] == [32] * 4 + [64] * 3
            controller.timeline.select(result.run_id)
        # Restored from the image's parameters text: hires fix on, as it ran.
        set_panel(studio, hires_scale=None)
        controller.files.restore_parameters(result.parameters, "x.png")
        got = panel.values()
        assert (got.hires_scale, got.hires_steps, got.hires_upscaler, got.hires_denoise) == (2.0, 3, "Latent", 0.5)
        assert panel.hires_on.isChecked() and panel.hires_steps.isEnabled()
        controller.files.restore_parameters("a cat\nSteps: 3, Sampler: Euler, Seed: 5, Size: 32x32", "y.png")
        assert panel.values().hires_scale is None and not panel.hires_on.isChecked()
    finally:
        studio.controller.shutdown()


def test_the_wheel_over_the_unfocused_tile_box_changes_nothing(panel):
    before = panel.values()
    panel.generate_button.setFocus()
    panel.scroll.ensureWidgetVisible(panel.tile_size)
    for _ in range(3):
        wheel(panel.tile_size)
    assert panel.values() == before and before.tile_size == 0


def test_a_tiled_run_from_the_panel_writes_and_restores_its_tile_size(qtbot, tmp_path):
    studio = make_studio(qtbot, tmp_path)
    try:
        panel, controller = studio.window.panel, studio.controller
        set_panel(studio, prompt="red circle", steps=3, seed=3, seed_mode="fixed", width=128, height=128,
                  tile_size=64)
        assert panel.values().request_fields()["tile_size"] == 64
        result = settle(studio, qtbot, controller.generate)
        assert isinstance(result, JobResult) and result.image.shape == (128, 128, 3)
        assert "Tiled diffusion: 64" in result.parameters
        set_panel(studio, tile_size=0)
        controller.files.restore_parameters(result.parameters, "x.png")
        assert panel.values().tile_size == 64 and panel.tile_size.value() == 64
        controller.files.restore_parameters("a cat\nSteps: 3, Sampler: Euler, Seed: 5, Size: 32x32", "y.png")
        assert panel.values().tile_size == 0
    finally:
        studio.controller.shutdown()
