"""Picking a model applies its trained size and recommended settings, and says so."""

from studio.state.jobs import ModelChoice, RecommendedSettings
from studio.state.model_defaults import apply_model_defaults
from studio.state.panel_values import PanelValues

ADVICE = RecommendedSettings(steps=25, cfg_scale=7.0, classifier_scale=10.0)


def test_size_and_advice_are_applied_and_the_rest_stays():
    before = PanelValues(prompt="a cat", seed=42, sampler="euler", width=64, height=64, cfg_scale=3.0)
    choice = ModelChoice("sd:x", "SD 1.5", has_classifier=False, default_size=(512, 512), recommended=ADVICE)
    after, summary = apply_model_defaults(before, choice)
    assert (after.width, after.height, after.steps, after.cfg_scale) == (512, 512, 25, 7.0)
    assert (after.prompt, after.seed, after.sampler) == ("a cat", 42, "euler")
    assert after.classifier_scale == before.classifier_scale  # no classifier: its (disabled) box is left alone
    assert summary == "SD 1.5: 512\u00d7512, 25 steps, CFG 7 (its recommended settings)"


def test_a_model_with_a_classifier_gets_its_classifier_scale():
    choice = ModelChoice("embedded", "Emoji", has_classifier=True, default_size=(64, 64), recommended=ADVICE)
    after, summary = apply_model_defaults(PanelValues(), choice)
    assert after.classifier_scale == 10.0
    assert "classifier guidance 10" in summary


def test_nothing_known_changes_nothing():
    values = PanelValues()
    assert apply_model_defaults(values, ModelChoice("k", "K")) == (values, "")


def test_first_start_defaults_are_the_embedded_models_recommended_settings():
    import json

    from studio.engine.models.embedded import RESOURCE_DIR

    advice = json.loads((RESOURCE_DIR / "config.json").read_text())["recommended"]
    values = PanelValues()
    assert (values.steps, values.cfg_scale, values.classifier_scale) == (
        advice["steps"], advice["cfg_scale"], advice["classifier_scale"])
    base = json.loads((RESOURCE_DIR / "config.json").read_text())["base_size"] * 2  # after the SR stage
    assert (values.width, values.height) == (base, base)


def test_a_flux_model_gets_its_distilled_guidance():
    advice = RecommendedSettings(steps=28, cfg_scale=1.0, classifier_scale=0.0, distilled_cfg=30.0)
    fill = ModelChoice("flux:fill", "Flux Fill", default_size=(1024, 1024), recommended=advice,
                       distilled_guidance=True)
    after, summary = apply_model_defaults(PanelValues(distilled_cfg=3.5), fill)
    assert (after.steps, after.cfg_scale, after.distilled_cfg) == (28, 1.0, 30.0)
    assert summary.endswith("CFG 1, distilled CFG 30 (its recommended settings)")
    schnell = ModelChoice("flux:s", "Flux schnell", recommended=RecommendedSettings(4, 1.0, 0.0))
    assert apply_model_defaults(PanelValues(distilled_cfg=5.0), schnell)[0].distilled_cfg == 5.0


def test_a_flow_model_gets_its_spacing_but_karras_stays():
    advice = RecommendedSettings(steps=8, cfg_scale=1.0, classifier_scale=0.0, spacing="trailing")
    zimage = ModelChoice("sd:z", "Z-Image Turbo", default_size=(1024, 1024), recommended=advice)
    after, summary = apply_model_defaults(PanelValues(spacing="leading"), zimage)
    assert after.spacing == "trailing" and "trailing spacing" in summary
    assert apply_model_defaults(PanelValues(spacing="karras"), zimage)[0].spacing == "karras"
    sd = ModelChoice("sd:x", "SD 1.5", recommended=ADVICE)  # no spacing advice: the user's stays
    assert apply_model_defaults(PanelValues(spacing="trailing"), sd)[0].spacing == "trailing"
