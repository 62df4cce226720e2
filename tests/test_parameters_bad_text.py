"""Parameters text that is wrong, huge or hostile: adapted with a notice or refused with ParametersError,
never another exception, and always in time linear in its length."""

import time

import pytest

from studio.engine.request import GenerationRequest
from studio.io.parameters import MAX_TEXT_CHARS, ParametersError, parse_parameters

BASE = GenerationRequest(steps=20, seed=5, width=64, height=64, cfg_scale=3.0)
HEAD = "a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 3, "


def parse(tail: str):
    return parse_parameters(HEAD + tail, BASE)


def test_a_size_without_height_keeps_the_size_with_a_notice():
    parsed = parse("Size: 512")
    assert (parsed.request.width, parsed.request.height) == (64, 64)
    assert parsed.notices == ("Size 512 is not WIDTHxHEIGHT: kept 64x64.",)


@pytest.mark.parametrize(("tail", "field", "value", "notice"), [
    ("Size: 64x64, Steps: 99999999999", "steps", 20, None),  # the first Steps wins, as in A1111
    ("Size: 100000x100000", "width", 100000, None),  # as written: fitted to the model, or refused, later
    ("Size: 64x64, Clip skip: 40", "clip_skip", 12, "Clip skip 40 is more than 12: set to 12."),
    ("Size: 64x64, Denoising strength: 7", "strength", 1.0, "Denoising strength 7 is more than 1: set to 1."),
    ("Size: 64x64, Mask blur: nan", "mask_feather", 0.0, "Mask blur nan is not a number: kept 0.0."),
    ("Size: 64x64, Guidance interval: 5-1", "guidance_interval", None,
     "Guidance interval 5-1 is not LOW-HIGH with LOW < HIGH: kept off."),
    ("Size: 64x64, RePaint resample: 1000000000", "resample", 20,
     "RePaint resample 1000000000 is more than 20: set to 20."),
])
def test_values_out_of_range_are_adapted_with_a_notice(tail, field, value, notice):
    parsed = parse(tail)
    assert getattr(parsed.request, field) == value
    assert (notice in parsed.notices) if notice else True


def test_huge_numbers_are_clamped_or_kept_with_a_notice():
    text = "x\nSteps: 99999999999, Sampler: Euler, CFG scale: 1e999, Seed: 1e400, Size: 64x64"
    parsed = parse_parameters(text, BASE)
    r = parsed.request
    assert (r.steps, r.cfg_scale, r.seed) == (1000, 3.0, 5)
    assert parsed.notices == ("Steps 99999999999 is more than 1000: set to 1000.",
                              "CFG scale 1e999 is not a number: kept 3.0.",
                              "Seed 1e400 is not a whole number from 0: kept 5.")
    digits = parse_parameters("x\nSteps: 1" + "0" * 5000 + ", Sampler: Euler, Seed: 1, Size: 64x64", BASE)
    assert digits.request.steps == 20 and "is not a whole number" in digits.notices[0]


def test_text_too_long_to_be_parameters_is_refused():
    with pytest.raises(ParametersError, match="reads at most"):
        parse_parameters("a" * (MAX_TEXT_CHARS + 1))


# Each of these took 64-114 s at 32,000 characters with the old single-regex reader (2-core machine, busy).
HOSTILE_LINES = {
    "prompt words": lambda n: "word " * (n // 5),
    "a key with no colon": lambda n: "Steps: 20, Seed: 1, " + "a" * n,
    "a run of spaces": lambda n: "Steps: 20, Seed: 1, a" + " " * n,
    "unclosed quotes": lambda n: 'Steps: 20, Seed: 1, ' + 'k: "x, ' * (n // 7),
    "unclosed brackets": lambda n: "Steps: 20, Seed: 1, " + "k: {x, " * (n // 7),
    "nested brackets": lambda n: "Steps: 20, Seed: 1, k: " + "[" * (n // 2) + "]" * (n // 2),
    "many pairs": lambda n: "Steps: 20, " * (n // 11),
    "colons": lambda n: "Steps: 20, Seed: 1, " + "a:" * (n // 2),
    "digits in a size": lambda n: "Steps: 20, Seed: 1, Size: " + "1" * n,
    "digits in an interval": lambda n: "Steps: 20, Seed: 1, Guidance interval: " + "1" * n,
}


def seconds_to_parse(text: str) -> float:
    start = time.perf_counter()
    parse_parameters(text, BASE)
    return time.perf_counter() - start


@pytest.mark.parametrize("shape", list(HOSTILE_LINES))
def test_a_32000_character_last_line_parses_at_once(shape):
    assert seconds_to_parse("prompt\n" + HOSTILE_LINES[shape](32_000)) < 2.0  # 0.01-0.3 s; old reader: 64-114 s


@pytest.mark.parametrize("shape", ["prompt words", "a key with no colon", "a run of spaces"])
def test_a_megabyte_last_line_parses_in_linear_time(shape):
    assert seconds_to_parse("prompt\n" + HOSTILE_LINES[shape](1_000_000)) < 3.0  # ~0.15 s; quadratic: hours


@pytest.mark.parametrize("text", ["", "\n\n\n", "Negative prompt:", ":::", ", , ,", "\x00\ud800\udfff", '"',
                                  "Steps: , Seed: , Size: ", "a\r\nNegative prompt: b\r\nSteps: 2, Seed: 1, Size: 8x8"])
def test_odd_texts_parse(text):
    parsed = parse_parameters(text, BASE)
    parsed.request.prompt.encode("utf-8")  # lone surrogates were replaced
