"""AUTOMATIC1111's emphasis syntax, parsed the way its users expect (examples from its documentation)."""

import pytest

from studio.engine.prompt_syntax import BREAK, parse_prompt_weights, plain_text


def _rounded(runs):
    return [(t, round(w, 6)) for t, w in runs]


@pytest.mark.parametrize(("prompt", "expected"), [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", [
        ("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
        (", sun, ", 1.1), ("sky", 1.4641), (".", 1.1)]),
    ("[faded]", [("faded", round(1 / 1.1, 6))]),
    ("stray) bracket]", [("stray bracket", 1.0)]),
    ("ratio 16:9 and (x:2)", [("ratio 16:9 and ", 1.0), ("x", 2.0)]),
    ("no bracket:1.5) here", [("no bracket:1.5) here", 1.0)]),
    ("", [("", 1.0)]),
])
def test_emphasis(prompt, expected):
    assert _rounded(parse_prompt_weights(prompt)) == expected


def test_break_splits_and_is_a_word_on_its_own():
    assert parse_prompt_weights("a cat BREAK a (dog)") == [("a cat", 1.0), (BREAK, 1.0), ("a ", 1.0), ("dog", 1.1)]
    assert parse_prompt_weights("BREAKFAST") == [("BREAKFAST", 1.0)]


def test_plain_text_drops_the_syntax():
    assert plain_text("a (red:1.4) [blurry] apple BREAK table") == "a red blurry apple table"


def test_the_toy_model_reads_emphasis_as_plain_words():
    from studio.engine.models.toy import ToyShapesModel

    model = ToyShapesModel()
    plain, _ = model.encode_prompt("red circle", "", 32, 32)
    emphasised, _ = model.encode_prompt("(red:1.3) [circle]", "", 32, 32)
    for k in plain:
        assert (plain[k] == emphasised[k]).all()


def test_brackets_past_the_weighing_depth_weigh_nothing_and_cost_no_more():
    from studio.engine.prompt_syntax import MAX_WEIGHING_DEPTH

    deep = "(" * (MAX_WEIGHING_DEPTH + 8) + "a" + ")" * (MAX_WEIGHING_DEPTH + 8) + " b"
    assert _rounded(parse_prompt_weights(deep)) == _rounded([("a", 1.1**MAX_WEIGHING_DEPTH), (" b", 1.0)])
    # Within the depth nothing changes: brackets still pair with their own kind.
    assert _rounded(parse_prompt_weights("([a) b]")) == _rounded([("a", 1.0), (" b", 1 / 1.1)])
    # The prompt box's cap of unclosed brackets: every run is rescaled at most MAX_WEIGHING_DEPTH times.
    # Runs opened deeper all weigh as the deepest weighing bracket, so they merge into the last run.
    runs = parse_prompt_weights("[a:" * 6_666)
    assert len(runs) == MAX_WEIGHING_DEPTH and runs[0] == ("a:", 1 / 1.1)
    assert runs[-1][0] == "a:" * (6_666 - MAX_WEIGHING_DEPTH + 1)
    assert runs[-1][1] == pytest.approx((1 / 1.1) ** MAX_WEIGHING_DEPTH)
