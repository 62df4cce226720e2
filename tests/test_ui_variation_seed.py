"""Variation seed and strength in the prompt panel: through the real widgets to the engine's request."""

import numpy as np
import pytest
from PySide6.QtWidgets import QWidget

from studio.state.panel_values import PanelValues
from studio.ui.prompt_panel import PromptPanel


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    return widget


def test_the_rows_exist_round_trip_and_reach_the_request(panel):
    assert panel.findChild(QWidget, "variation_seed") is panel.variation_seed
    assert panel.findChild(QWidget, "variation_strength") is panel.variation_strength
    values = PanelValues(seed=5, seed_mode="fixed", variation_seed=77, variation_strength=0.35)
    panel.set_values(values)
    assert (panel.variation_seed.value(), panel.variation_strength.value()) == (77, 0.35)
    assert panel.values() == values
    fields = panel.values().request_fields()
    assert (fields["variation_seed"], fields["variation_strength"]) == (77, 0.35)


def test_values_from_a_file_are_brought_into_the_boxes_ranges(panel):
    restored = PanelValues.from_json({"variation_seed": 2**40, "variation_strength": 1.5})
    panel.set_values(restored)
    assert (panel.values().variation_seed, panel.values().variation_strength) == (2**31 - 1, 1.0)
    assert PanelValues.from_json({"variation_strength": "lots"}).variation_strength == 0.0


def test_the_panels_variation_gives_the_variation_seeds_image(panel):
    from studio.engine.models.toy import ToyShapesModel
    from studio.engine.request import GenerationRequest
    from studio.engine.runner import Runner

    panel.set_values(PanelValues(prompt="circle", sampler="euler", steps=6, seed=5, seed_mode="fixed",
                                 width=32, height=32))
    panel.variation_seed.setValue(77)
    panel.variation_strength.setValue(1.0)
    runner = Runner(ToyShapesModel())
    fields = panel.values().request_fields() | {"model": "toy"}
    varied = runner.run(GenerationRequest(**fields))
    plain = runner.run(GenerationRequest(**(fields | {"seed": 77, "variation_strength": 0.0})))
    assert np.array_equal(varied.image, plain.image)


def test_a_variation_set_in_the_window_reaches_the_run_and_reads_back(qtbot, tmp_path):
    from test_ui_studio import make_studio, settle

    from studio.state.jobs import JobResult

    studio = make_studio(qtbot, tmp_path)
    try:
        panel = studio.window.panel
        panel.set_values(panel.values().with_changes(steps=2, seed=3, seed_mode="fixed"))
        panel.set_advanced_open(True)
        panel.variation_seed.setValue(42)
        panel.variation_strength.setValue(0.4)
        result = settle(studio, qtbot, studio.controller.generate)
        assert isinstance(result, JobResult)
        assert "Variation seed: 42, Variation seed strength: 0.4" in result.parameters
        panel.variation_strength.setValue(0.0)
        studio.controller.files.restore_parameters(result.parameters, "x.png")
        assert (panel.values().variation_seed, panel.values().variation_strength) == (42, 0.4)
        studio.controller.files.restore_parameters("a cat\nSteps: 2, Seed: 3, Size: 64x64", "y.png")
        assert panel.values().variation_strength == 0.0  # made without a variation: restored without one
    finally:
        studio.controller.shutdown()
