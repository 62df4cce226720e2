"""The prompt panel through its real widgets: the field table, the wheel, typing past a limit, outlines."""

from dataclasses import fields

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from studio.state.jobs import EngineCatalog, ModelChoice
from studio.state.panel_values import PanelValues
from studio.ui.prompt_panel import PromptPanel

SD = ModelChoice("sd:x", "SD", has_classifier=True, clip_skip=True, size_multiple=8)
CATALOG = EngineCatalog((SD, ModelChoice("toy", "Toy")), (("dpmpp_2m", "DPM++ 2M"), ("euler", "Euler")),
                        ("leading", "trailing", "karras"), "sd:x", "cpu")


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_catalog(CATALOG)
    widget.resize(340, 420)  # short: the settings scroll
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def outlined(widget: QWidget) -> bool:
    return widget.property("error") is True


def wheel(widget: QWidget, clicks: int = -1) -> None:
    """Mouse-wheel notches (-1: one towards the user, which scrolls down) over the widget's centre, delivered
    through the window as the windowing system delivers them (so an ignored one goes on to the parents)."""
    top = widget.window()
    QTest.wheelEvent(top.windowHandle(), QPointF(widget.mapTo(top, widget.rect().center())), QPoint(0, 120 * clicks))
    QApplication.processEvents()


def type_into(qtbot, box, text: str) -> None:
    box.setFocus()
    qtbot.waitUntil(box.hasFocus)
    box.lineEdit().selectAll()
    QTest.keyClicks(box, text)


# -- the field table ----------------------------------------------------------------------------------
def test_every_panel_value_has_one_row_whose_widget_carries_its_name(panel):
    names = [f.name for f in fields(PanelValues)]
    assert sorted(panel.fields) == sorted(names)
    for name in names:
        assert panel.findChild(QWidget, name) is panel.fields[name].widget
    # Every request field the engine can complain about finds its widget.
    assert set(PanelValues().request_fields()) <= set(panel.fields)


def test_values_round_trip_through_the_widgets(panel):
    panel.set_model_info(SD)
    values = PanelValues(prompt="a (red:1.2) car", negative_prompt="blur", model="sd:x", sampler="euler",
                         spacing="trailing", steps=33, cfg_scale=6.5, guidance_rescale=0.7,
                         guidance_interval=(0.5, 7.25), classifier_scale=2.5, dynamic_threshold=0.97, clip_skip=2,
                         seed=123456, seed_mode="fixed", width=512, height=384, strength=0.6, mask_feather=9.0,
                         batch_count=3)
    panel.set_values(values)
    assert panel.values() == values
    panel.set_values(values.with_changes(spacing="karras", guidance_interval=None, dynamic_threshold=None))
    got = panel.values()
    assert (got.spacing, got.guidance_interval, got.dynamic_threshold) == ("karras", None, None)


def test_values_beyond_the_widgets_are_brought_into_range_not_a_crash(panel):
    panel.set_values(PanelValues(steps=99_999_999_999, seed=2**40, width=100_000, height=-8, cfg_scale=1e300,
                                 mask_feather=float("inf"), batch_count=0))
    got = panel.values()
    assert (got.steps, got.seed, got.width, got.height, got.batch_count) == (1000, 2**31 - 1, 2048, 8, 1)
    assert (got.cfg_scale, got.mask_feather) == (30.0, 64.0)


def test_model_dependent_fields_read_as_off_for_a_model_without_them(panel):
    panel.set_values(PanelValues(classifier_scale=3.0, clip_skip=2))
    panel.set_model_info(ModelChoice("e", "E", has_classifier=False, clip_skip=False))
    assert not panel.classifier.isEnabled() and not panel.clip_skip.isEnabled()
    assert (panel.values().classifier_scale, panel.values().clip_skip) == (0.0, 1)
    panel.set_model_info(SD)
    assert panel.classifier.isEnabled() and panel.clip_skip.isEnabled()
    assert (panel.values().classifier_scale, panel.values().clip_skip) == (3.0, 2)


@pytest.mark.parametrize("name", ["guidance_rescale", "guidance_interval", "mask_feather", "dynamic_threshold",
                                  "steps", "width", "sampler", "spacing", "classifier_scale"])
def test_an_engine_error_on_any_field_outlines_its_widget_until_the_value_is_changed(panel, name):
    panel.set_model_info(SD)
    panel.set_values(PanelValues(guidance_interval=(0.5, 5.0), dynamic_threshold=0.99))
    row = panel.fields[name]
    others = [w for n, f in panel.fields.items() if n != name for w in f.outlined]
    panel.mark_field(name)
    assert all(outlined(w) for w in row.outlined) and not any(outlined(w) for w in others)
    # The user changes the value (to one that can run): the outline goes at once, before any Generate.
    changed = {"guidance_rescale": 0.3, "guidance_interval": (1.0, 6.0), "mask_feather": 2.0,
               "dynamic_threshold": 0.95, "steps": 12, "width": 96, "sampler": "euler", "spacing": "karras",
               "classifier_scale": 1.5}[name]
    row.write(changed)
    assert not any(outlined(w) for w in row.outlined)


def test_an_interval_whose_low_end_is_not_below_its_high_end_is_outlined_while_set(panel):
    panel.set_values(PanelValues(guidance_interval=(2.0, 5.0)))
    panel.interval_lo.setValue(6.0)
    assert outlined(panel.interval_lo) and "low end" in panel.message.text()
    panel.interval_lo.setValue(1.0)
    assert not outlined(panel.interval_lo) and panel.message.isHidden()


# -- the wheel ----------------------------------------------------------------------------------------
def test_the_wheel_over_an_unfocused_box_scrolls_the_panel_and_changes_nothing(panel, qtbot):
    bar = panel.scroll.verticalScrollBar()
    assert bar.maximum() > 0
    before = panel.values()
    panel.generate_button.setFocus()
    for box in (panel.steps, panel.cfg, panel.sampler, panel.seed_mode):
        panel.scroll.ensureWidgetVisible(box)
        bar.setValue(bar.minimum())
        panel.scroll.ensureWidgetVisible(box)
        top = bar.value()
        for _ in range(3):
            wheel(box)
        assert bar.value() > top, box.objectName()
    panel.scroll.ensureWidgetVisible(panel.width_box)
    for _ in range(8):  # the issue: eight clicks took Width from 64 to 24
        wheel(panel.width_box, clicks=+1 if bar.value() == bar.maximum() else -1)
    assert panel.values() == before


def test_the_wheel_changes_a_box_that_has_focus(panel, qtbot):
    panel.scroll.ensureWidgetVisible(panel.steps)
    panel.steps.setFocus()
    qtbot.waitUntil(panel.steps.hasFocus)
    wheel(panel.steps, clicks=+1)
    assert panel.values().steps == 21


# -- typing past a limit ------------------------------------------------------------------------------
def test_typing_past_the_maximum_shows_the_range_at_once_and_enter_brings_it_in(panel, qtbot):
    panel.scroll.ensureWidgetVisible(panel.width_box)
    type_into(qtbot, panel.width_box, "4096")
    assert panel.width_box.text().startswith("4096")  # not 409: the last digit is kept
    assert outlined(panel.width_box)
    assert "8 to 2048" in panel.message.text() and not panel.message.isHidden()
    QTest.keyClick(panel.width_box, Qt.Key.Key_Return)
    assert panel.values().width == 2048
    assert not outlined(panel.width_box)
    assert "became 2048" in panel.message.text()  # a notice says what happened


def test_a_typed_size_snaps_to_the_models_multiple_when_editing_finishes(panel, qtbot):
    panel.set_model_info(ModelChoice("m", "M", size_multiple=16))
    panel.scroll.ensureWidgetVisible(panel.height_box)
    type_into(qtbot, panel.height_box, "100")
    assert not outlined(panel.height_box)  # not an error while typing: it may be on its way to 1000
    panel.generate_button.setFocus()  # leaving the box finishes the edit
    qtbot.waitUntil(lambda: not panel.height_box.hasFocus())
    assert panel.values().height == 96
    assert "multiples of 16" in panel.message.text()


def test_a_size_off_the_models_multiple_is_outlined_until_fixed(panel):
    panel.set_values(PanelValues(width=72))
    panel.set_model_info(ModelChoice("m", "M", size_multiple=16))
    assert outlined(panel.width_box) and "multiple of 16" in panel.message.text()
    panel.width_box.setValue(80)
    assert not outlined(panel.width_box)


def test_a_models_size_limit_caps_the_size_boxes_with_a_notice(panel, qtbot):
    panel.set_values(PanelValues(width=2048, height=512))
    panel.set_model_info(ModelChoice("embedded", "Emoji", size_multiple=8, max_side=1024))
    assert (panel.values().width, panel.values().height) == (1024, 512)
    assert "Width 2048 px became 1024 px" in panel.message.text()
    panel.set_values(PanelValues(width=64, height=1536))  # a restore beyond what this model takes
    assert panel.values().height == 1024 and "Height 1536 px became 1024 px" in panel.message.text()
    assert "Width" not in panel.message.text()  # the notice about the replaced values went with them
    panel.scroll.ensureWidgetVisible(panel.width_box)
    type_into(qtbot, panel.width_box, "2000")
    assert outlined(panel.width_box) and "8 to 1024" in panel.message.text()
    panel.set_model_info(ModelChoice("sd:x", "SD", size_multiple=8, max_side=4096))
    assert panel.width_box.maximum() == 2048  # the panel's own limit still holds


def test_distilled_cfg_is_shown_only_for_a_model_with_distilled_guidance(panel):
    panel.set_model_info(SD)
    assert panel.distilled.isHidden()
    panel.set_model_info(ModelChoice("flux:dev", "Flux dev", size_multiple=16, distilled_guidance=True))
    assert not panel.distilled.isHidden() and panel.distilled.isEnabled()
    panel.set_values(PanelValues(distilled_cfg=30.0, cfg_scale=1.0))
    assert panel.values().distilled_cfg == 30.0 and panel.values().request_fields()["distilled_cfg"] == 30.0
    panel.set_model_info(SD)
    assert panel.distilled.isHidden() and panel.values().distilled_cfg == 3.5  # read as the default, kept
