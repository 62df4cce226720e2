"""PanelValues from files and parameters: every value ends up one its widget can show."""

import math

import pytest

from studio.state.panel_limits import MAX_SEED, PANEL_LIMITS, Range
from studio.state.panel_values import PanelValues


@pytest.mark.parametrize(("saved", "restored"), [
    ({"steps": 99999999999}, {"steps": 1000}),
    ({"steps": 0, "batch_count": 10**400}, {"steps": 1, "batch_count": 64}),
    ({"width": -8, "height": 0}, {"width": 8, "height": 8}),
    ({"width": 100000, "height": 70}, {"width": 2048, "height": 72}),  # sizes snap to the multiple of 8
    ({"seed": 2**63, "clip_skip": -3}, {"seed": MAX_SEED, "clip_skip": 1}),
    ({"cfg_scale": 1e308, "strength": -2, "mask_feather": 10**400}, {"cfg_scale": 30.0, "strength": 0.0,
                                                                      "mask_feather": 64.0}),
    ({"guidance_interval": [20, 1e9]}, {"guidance_interval": (20.0, 1000.0)}),
    ({"guidance_interval": [8, 2]}, {"guidance_interval": (2.0, 8.0)}),
    ({"steps": 30.0, "cfg_scale": 7}, {"steps": 30, "cfg_scale": 7.0}),
    ({"prompt": "a\ud800b\r\nc"}, {"prompt": "a?b\nc"}),  # a lone surrogate cannot be saved back as UTF-8
    ({"negative_prompt": "a\xa0b\u2028c"}, {"negative_prompt": "a b\nc"}),  # as the prompt box shows them
    ({"guidance_interval": [-5, 10**400]}, {"guidance_interval": (0.0, 1000.0)}),
])
def test_saved_values_are_brought_into_the_widgets_ranges(saved, restored):
    values = PanelValues.from_json(saved)
    assert {k: getattr(values, k) for k in restored} == restored


def test_wrong_types_and_nan_keep_the_default():
    values = PanelValues.from_json({"steps": "ten", "seed": True, "cfg_scale": math.nan, "spacing": "sideways",
                                    "guidance_interval": [1, "x"], "width": None})
    assert values == PanelValues()


def test_parameters_that_do_not_fit_are_adapted_with_a_notice_each():
    values, notices = PanelValues.from_request_fields_with_notices(
        {"steps": 99999999999, "width": 100000, "height": 512, "seed": 4_000_000_000, "cfg_scale": 7.5},
        base=PanelValues(seed_mode="random"))
    assert (values.steps, values.width, values.height, values.seed, values.cfg_scale, values.seed_mode) == (
        1000, 2048, 512, MAX_SEED, 7.5, "fixed")
    assert notices == ("Steps 99999999999 is more than 1000: set to 1000.",
                       f"Seed 4000000000 is more than {MAX_SEED}: set to {MAX_SEED}.",
                       "Width 100000 is more than 2048: set to 2048.")
    assert PanelValues.from_request_fields({"steps": 99999999999}).steps == 1000  # the old call still works


def test_values_that_fit_give_no_notice():
    fields = PanelValues(steps=33, width=512, height=768, guidance_interval=(0.5, 8.0)).request_fields()
    values, notices = PanelValues.from_request_fields_with_notices(fields)
    assert notices == () and values.steps == 33 and values.guidance_interval == (0.5, 8.0)


def test_the_defaults_fit_the_limits():
    default = PanelValues()
    for name, limit in PANEL_LIMITS.items():
        value = getattr(default, name)
        if name != "guidance_interval" and value is not None:  # None: an optional setting, off
            assert limit.holds(value), name
    assert Range(8, 2048, 8).bound(float("inf")) == 2048
    assert not Range(0.0, 1.0).holds(10**400) and not Range(0.0, 1.0).holds(math.inf)
    with pytest.raises(ValueError):
        Range(0.0, 1.0).bound(math.nan)


def test_dynamic_threshold_is_restored_off_or_as_a_percentile_in_range():
    assert PanelValues.from_json({"dynamic_threshold": None}).dynamic_threshold is None
    assert PanelValues.from_json({"dynamic_threshold": 0.97}).dynamic_threshold == 0.97
    assert PanelValues.from_json(PanelValues(dynamic_threshold=0.9).to_json()).dynamic_threshold == 0.9
    values, notices = PanelValues.from_request_fields_with_notices({"dynamic_threshold": 5.0})
    assert values.dynamic_threshold == 1.0 and notices
    assert PanelValues(dynamic_threshold=0.99).request_fields()["dynamic_threshold"] == 0.99


def test_a_prompt_over_the_limit_is_cut_with_a_notice():
    from studio.state.panel_limits import MAX_PROMPT_CHARS

    values, notices = PanelValues.from_request_fields_with_notices({"prompt": "a" * 200_000})
    assert len(values.prompt) == MAX_PROMPT_CHARS and "200,000 characters" in notices[0]
    assert len(PanelValues.from_json({"negative_prompt": "b" * 30_000}).negative_prompt) == MAX_PROMPT_CHARS
