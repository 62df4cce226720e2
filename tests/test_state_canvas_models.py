"""A model that reads the canvas picture (the emoji colouriser) gets it at strength 1, and picking it sets
the strength it needs; other models keep the panel's rules (strength 1 without a mask: text only)."""

import numpy as np

from studio.state.job_builder import canvas_inputs
from studio.state.jobs import ModelChoice, RecommendedSettings
from studio.state.model_defaults import apply_model_defaults
from studio.state.panel_values import PanelValues

PICTURE = np.full((80, 80, 3), 128, np.uint8)


def test_the_colouriser_gets_the_canvas_picture_at_strength_1():
    values = PanelValues(model="emoji-colouriser", strength=1.0, width=64, height=64)
    init, mask = canvas_inputs(values, PICTURE, None)
    assert init is not None and init.shape == (64, 64, 3) and mask is None
    assert canvas_inputs(values.with_changes(model="embedded"), PICTURE, None) == (None, None)


def test_picking_a_model_that_needs_a_strength_sets_it_and_says_so():
    advice = RecommendedSettings(steps=20, cfg_scale=2.0, classifier_scale=0.0, strength=1.0)
    choice = ModelChoice("emoji-colouriser", "Emoji colouriser", False, (64, 64), recommended=advice)
    after, summary = apply_model_defaults(PanelValues(strength=0.6), choice)
    assert after.strength == 1.0 and "strength 1" in summary
    plain = RecommendedSettings(steps=20, cfg_scale=3.0, classifier_scale=0.0)
    kept, _ = apply_model_defaults(PanelValues(strength=0.6), ModelChoice("embedded", "E", recommended=plain))
    assert kept.strength == 0.6
