"""The LoRA and embedding pickers and the prompt hint's LoRA check, through the real widgets and engine session."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from studio.state.jobs import AdapterCatalog, AdapterChoice
from studio.state.prompt_snippets import insert_snippet, lora_tag
from studio.ui.prompt_hint import PromptHint, lora_problems
from studio.ui.prompt_panel import PromptPanel
from studio.worker import EngineClient

ADAPTERS = AdapterCatalog(
    loras=(AdapterChoice("detail_tweaker", "/m/Lora/detail_tweaker.safetensors"),
           AdapterChoice("film_grain", "/m/Lora/film_grain.safetensors")),
    embeddings=(AdapterChoice("easynegative", "/m/embeddings/easynegative.safetensors"),))


@pytest.fixture
def panel(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_adapters(ADAPTERS)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def place_cursor(box, position: int) -> None:
    cursor = box.textCursor()
    cursor.setPosition(position)
    box.setTextCursor(cursor)


@pytest.mark.parametrize(("text", "start", "end", "expected"), [
    ("", 0, 0, "<lora:x:1>"),
    ("a cat", 0, 0, "a cat, <lora:x:1>"),  # a cursor never placed: after the text
    ("a cat on a mat", 5, 5, "a cat, <lora:x:1>, on a mat"),
    ("a cat, ", 7, 7, "a cat, <lora:x:1>"),
    ("a cat, dog", 7, 10, "a cat, <lora:x:1>"),  # the selection is replaced
])
def test_a_snippet_goes_at_the_cursor_apart_from_the_words_around_it(text, start, end, expected):
    new, cursor = insert_snippet(text, start, end, lora_tag("x"))
    assert new == expected and new[:cursor].endswith("<lora:x:1>")


def test_picking_a_lora_from_the_list_inserts_its_tag_at_the_cursor(panel, qtbot):
    panel.prompt.setPlainText("a cat on a mat")
    place_cursor(panel.prompt, 5)
    qtbot.mouseClick(panel.lora_button, Qt.MouseButton.LeftButton)
    popup = panel.lora_button.popup
    qtbot.waitUntil(popup.isVisible)
    assert popup.names() == ["detail_tweaker", "film_grain"]
    QTest.keyClicks(popup.search, "grain")
    assert popup.names() == ["film_grain"]
    QTest.keyClick(popup.search, Qt.Key.Key_Return)
    assert not popup.isVisible()
    assert panel.values().prompt == "a cat, <lora:film_grain:1>, on a mat"
    # The weight is edited in the text: Ctrl+Up on the tag (the cursor is just after it).
    place_cursor(panel.prompt, len("a cat, <lora:film"))
    QTest.keyClick(panel.prompt, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert panel.values().prompt == "a cat, <lora:film_grain:1.1>, on a mat"
    panel.prompt.undo()
    panel.prompt.undo()
    assert panel.values().prompt == "a cat on a mat"  # each insertion and weight change is one undo step


def test_arrow_keys_and_clicks_pick_too(panel, qtbot):
    panel.lora_button.click()
    popup = panel.lora_button.popup
    QTest.keyClick(popup.search, Qt.Key.Key_Down)
    assert popup.list.currentItem().text() == "film_grain"
    item = popup.list.item(0)
    qtbot.mouseClick(popup.list.viewport(), Qt.MouseButton.LeftButton, pos=popup.list.visualItemRect(item).center())
    assert panel.values().prompt == "red heart, <lora:detail_tweaker:1>"


def test_an_embedding_goes_into_the_prompt_box_used_last(panel, qtbot):
    panel.negative.setPlainText("blurry")
    panel.negative.setFocus()
    qtbot.waitUntil(panel.negative.hasFocus)
    panel.embedding_button.click()
    QTest.keyClick(panel.embedding_button.popup.search, Qt.Key.Key_Return)
    assert panel.values().negative_prompt == "blurry, easynegative"
    assert panel.values().prompt == "red heart"
    panel.prompt.setFocus()
    qtbot.waitUntil(panel.prompt.hasFocus)
    panel.embedding_button.click()
    QTest.keyClick(panel.embedding_button.popup.search, Qt.Key.Key_Return)
    assert panel.values().prompt == "red heart, easynegative"


def test_an_empty_list_says_where_the_files_go(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    widget.set_adapters(AdapterCatalog())
    widget.lora_button.click()
    assert widget.lora_button.popup.empty.isVisibleTo(widget.lora_button.popup)
    assert "models/Lora" in widget.lora_button.popup.empty.text()


def test_the_wheel_never_reaches_the_new_boxes_unless_focused(panel):
    from test_ui_prompt_panel import wheel

    panel.resize(340, 420)
    for name in ("inpaint_area", "masked_content", "inpaint_padding", "refiner", "refiner_switch"):
        box = panel.fields[name].widget
        assert box.focusPolicy() == Qt.FocusPolicy.StrongFocus, name
    panel.set_advanced_open(True)
    before = panel.values()
    for name in ("inpaint_area", "masked_content"):
        wheel(panel.fields[name].widget, -3)
    assert panel.values() == before


def test_lora_problems_name_the_closest_files_as_the_engine_does():
    # The engine's message comes from the same function (engine/adapter_names.py; tests/test_adapter_files.py).
    names = ["detail_tweaker", "film_grain"]
    said = lora_problems("a cat <lora:detial_tweaker:0.8>, <lora:Film_Grain>", names)
    assert said == "No LoRA named 'detial_tweaker' (closest: detail_tweaker)"
    assert lora_problems("a cat <lora:film_grain:x>", names).startswith("<lora:film_grain:x>: 'x' is not a weight")
    assert lora_problems("a cat, <lora:film_grain:0.5>", names) == ""
    assert "no LoRA files were found" in lora_problems("<lora:any>", [])


def test_the_hint_line_warns_of_an_unknown_lora_before_generate(panel, qtbot):
    engine = EngineClient()  # not started: the hint's LoRA check needs no engine thread
    hint = PromptHint(panel, engine)
    panel.prompt.setPlainText("a cat <lora:detial_tweaker:1>")
    hint.ask()
    assert panel.prompt_hint.isVisibleTo(panel)
    assert "No LoRA named 'detial_tweaker' (closest: detail_tweaker)" in panel.prompt_hint.text()
    panel.prompt.setPlainText("a cat <lora:detail_tweaker:1>")
    hint.ask()
    assert not panel.prompt_hint.isVisibleTo(panel)


def test_no_lora_is_called_missing_before_the_engine_has_listed_them(qtbot):
    widget = PromptPanel()
    qtbot.addWidget(widget)
    hint = PromptHint(widget, EngineClient())
    widget.prompt.setPlainText("<lora:anything:1>")
    hint.ask()
    assert widget.prompt_hint.text() == ""


def test_folders_set_in_settings_reach_the_picker_and_opening_it_lists_again(qtbot, tmp_path):
    from test_ui_studio import TIMEOUT, make_studio

    loras = tmp_path / "my loras" / "Lora"
    loras.mkdir(parents=True)
    (loras / "pixel.safetensors").write_bytes(b"")
    studio = make_studio(qtbot, tmp_path)
    try:
        panel, controller = studio.window.panel, studio.controller
        popup = panel.lora_button.popup
        assert "pixel" not in popup.names()
        controller.apply_settings(controller.settings.with_changes(model_folders=(str(loras),)))
        qtbot.waitUntil(lambda: "pixel" in popup.names(), timeout=TIMEOUT)
        (loras / "film.safetensors").write_bytes(b"")
        panel.lora_button.click()  # a file copied in while the studio runs shows up when the picker opens
        qtbot.waitUntil(lambda: "film" in popup.names(), timeout=TIMEOUT)
        popup.hide()
    finally:
        studio.controller.shutdown()


def test_the_settings_dialog_says_adapter_folders_are_found_there(qtbot):
    from studio.state.settings import Settings
    from studio.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings(model_folders=("/m/Lora",)))
    qtbot.addWidget(dialog)
    assert "LoRA" in dialog.folders_label.text() and "embeddings" in dialog.folders_label.text()
    assert dialog.settings().model_folders == ("/m/Lora",)


def test_the_controlnets_found_fill_the_units_model_boxes(panel):
    panel.set_adapters(AdapterCatalog(controlnets=(AdapterChoice("control_sd15_canny", "/m/ControlNet/c.pth"),)))
    box = panel.controlnets.units[0].model
    assert [box.itemData(i) for i in range(box.count())] == ["control_sd15_canny"]
