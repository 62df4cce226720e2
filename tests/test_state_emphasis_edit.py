"""Ctrl+Up / Ctrl+Down emphasis editing in the prompt box (pure string maths)."""

import pytest

from studio.state.emphasis_edit import adjust_emphasis


def press(text, start, end, keys):
    for up in keys:
        text, start, end = adjust_emphasis(text, start, end, up)
    return text, start, end


def test_selection_is_wrapped_then_stepped_then_unwrapped():
    text = "a red apple on a table"
    s, e = text.index("red apple"), text.index("red apple") + len("red apple")
    assert press(text, s, e, [True]) == ("a (red apple:1.1) on a table", 3, 12)
    assert press(text, s, e, [True, True])[0] == "a (red apple:1.2) on a table"
    assert press(text, s, e, [True, False]) == (text, s, e)  # back to 1.0: brackets removed, same words selected
    assert press(text, s, e, [False, False])[0] == "a (red apple:0.8) on a table"


def test_cursor_in_a_word_or_a_group_needs_no_selection():
    assert press("a red apple", 4, 4, [True])[0] == "a (red:1.1) apple"
    assert press("a (red:1.3) apple", 5, 5, [False])[0] == "a (red:1.2) apple"
    assert press("a (red:1.3) apple", 2, 2, [True])[0] == "a (red:1.4) apple"  # on the bracket itself


@pytest.mark.parametrize(("text", "pos"), [("", 0), ("red  apple", 4)])
def test_nothing_to_emphasise_changes_nothing(text, pos):
    assert adjust_emphasis(text, pos, pos, True) == (text, pos, pos)


def test_spaces_at_the_selection_edges_stay_outside():
    text, s, e = press("a red apple", 1, 6, [True])
    assert text == "a (red:1.1) apple" and text[s:e] == "red"


def test_part_of_a_group_gets_its_own_brackets():
    text, s, e = press("(red apple:1.2)", 1, 4, [True])
    assert text == "((red:1.1) apple:1.2)" and text[s:e] == "red"


@pytest.mark.parametrize(("text", "start", "end", "up", "expected"), [
    ("cat <lora:x:1>", 8, 8, True, "cat <lora:x:1.1>"),
    ("cat <lora:x>", 8, 8, False, "cat <lora:x:0.9>"),  # no weight is 1
    ("cat <lora:x:0.8:0.5>", 4, 20, True, "cat <lora:x:0.8:0.6>"),  # the last weight: the UNet's
    ("cat <lyco:x:0.1>", 14, 14, False, "cat <lyco:x:0>"),
    ("cat <lora:x:abc>", 8, 8, True, "cat <lora:x:abc>"),  # not a weight: left for the engine to name
])
def test_ctrl_up_and_down_on_a_lora_tag_change_its_weight(text, start, end, up, expected):
    new, sel_start, sel_end = adjust_emphasis(text, start, end, up)
    assert new == expected
    assert new[sel_start:sel_end] == expected[4:]  # the tag stays selected: the key can be pressed again
