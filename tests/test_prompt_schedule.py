"""Prompt editing and alternation: schedules as AUTOMATIC1111 documents them (its prompt_parser examples)."""

import time

import pytest

from studio.engine.prompt_schedule import prompt_at, prompt_schedule, prompts_per_step


def _alternating(*texts, steps=10):
    return [(s, texts[(s - 1) % len(texts)]) for s in range(1, steps + 1)]


@pytest.mark.parametrize(("prompt", "expected"), [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", _alternating("a", "(b:1.1)")),
    ("[fe|]male", _alternating("female", "male")),
    ("[fe|||]male", _alternating("female", "male", "male", "male")),
])
def test_a1111_examples(prompt, expected):
    assert prompt_schedule(prompt, 10) == expected


def test_a1111_landscape_example():
    prompt = ("fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
              "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]")
    assert prompt_schedule(prompt, 100) == [
        (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
        (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
        (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
        (75, "fantasy landscape with a lake and an oak in background masterful"),
        (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
    ]


@pytest.mark.parametrize(("prompt", "expected"), [
    ("[red heart:blue car:0.5]", [(10, "red heart"), (20, "blue car")]),  # a fraction of the steps
    ("[red heart:blue car:5]", [(5, "red heart"), (20, "blue car")]),  # a step number
    ("[a:b:1.0]", [(20, "a")]),  # a decimal point makes it a fraction: the whole run
    ("[a:b:1.5]", [(20, "a")]),
    ("[a:b:0]", [(20, "b")]),
    ("[a:b:-3]", [(20, "b")]),
    ("[a:b:1e400]", [(20, "a")]),  # AUTOMATIC1111 fails with an OverflowError here
    ("[a:b:99]", [(20, "a")]),
    ("[a::5] b", [(5, "a b"), (20, " b")]),  # [from::when] removes
    ("(a:[b:c:2])", [(2, "(a:b)"), (20, "(a:c)")]),  # emphasis around an edit keeps its brackets
    ("[(red:1.3):blue:0.5]", [(10, "(red:1.3)"), (20, "blue")]),  # emphasis inside an edit
    ("a [b] c", [(20, "a [b] c")]),  # plain de-emphasis stays
    ("a \\[b:c:2\\]", [(20, "a \\[b:c:2\\]")]),  # escaped brackets are text
    ("ratio 16:9", [(20, "ratio 16:9")]),
    ("x | y [a:b:2]", [(20, "x | y [a:b:2]")]),  # a stray '|' makes AUTOMATIC1111 read it all as text
    ("", [(20, "")]),
])
def test_edges(prompt, expected):
    assert prompt_schedule(prompt, 20) == expected


def test_nested_alternation_inside_an_edit():
    assert prompts_per_step("[a:[b|c]:2]", 6) == ["a", "a", "b", "c", "b", "c"]


def test_prompt_at_and_per_step_agree():
    schedule = prompt_schedule("[red heart:blue car:0.5]", 4)
    assert [prompt_at(schedule, s) for s in range(1, 5)] == prompts_per_step("[red heart:blue car:0.5]", 4)
    assert prompts_per_step("[red heart:blue car:0.5]", 4) == ["red heart", "red heart", "blue car", "blue car"]


@pytest.mark.parametrize("prompt", ["[" * 5000, "(" * 3000 + "x", "[a" * 5000, "[ (x)" * 3000,
                                    "(a:[b|c])" * 500, "x" * 100_000 + "[a:b:2]"])
def test_pathological_prompts_are_quick(prompt):
    started = time.perf_counter()
    schedule = prompt_schedule(prompt, 1000)
    assert time.perf_counter() - started < 1.0
    assert schedule[-1][0] == 1000


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="at least one step"):
        prompt_schedule("a", 0)
