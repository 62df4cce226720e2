"""X/Y/Z plot axes: which settings can vary, and their values parsed from AUTOMATIC1111's syntax.

Values are comma separated; a value holding a comma is written in double quotes. Whole-number and
decimal settings take ranges as AUTOMATIC1111's X/Y/Z plot does:

    1-5          1, 2, 3, 4, 5
    1-5 (+2)     1, 3, 5           (a step; a negative one counts down: 10-1 (-3) is 10, 7, 4, 1)
    1-10 [5]     1, 3, 5, 7, 10    (five values spread evenly, whole numbers cut toward zero)
    0-1 (+0.25)  0, 0.25, 0.5, 0.75, 1

Two choices differ from AUTOMATIC1111 to spare users its surprises: a space after a comma does not
stop a quoted value from being quoted, and a range written downwards without a step counts down
(AUTOMATIC1111 gives nothing for ``5-1``). Torch-free: the engine's samplers, spacings and models come
in as ``AxisChoices`` from the catalog.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
from dataclasses import dataclass
from itertools import chain
from typing import Any

from .panel_values import MAX_SEED

MAX_CELLS = 100  # images in one plot; each is a full run, and the grid keeps them all in memory
NOTHING = "Nothing"

_INT = r"[+-]?\s*\d+"
_FLOAT = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"


def _range_re(number: str) -> re.Pattern[str]:
    # start - end, then an optional (step) or [count]
    return re.compile(rf"\s*({number})\s*-\s*({number})\s*(?:\(\s*({number})\s*\)|\[\s*(\d+)\s*\])?\s*")


INT_RANGE = _range_re(_INT)
FLOAT_RANGE = _range_re(_FLOAT)
SIZE_RE = re.compile(r"\s*(\d+)\s*(?:[x×*]\s*(\d+))?\s*", re.IGNORECASE)


class AxisError(ValueError):
    """A plot the user can fix; the message names the axis and the value at fault."""

    def __init__(self, letter: str, message: str):
        super().__init__(f"{letter} axis: {message}")
        self.letter = letter


@dataclass(frozen=True)
class AxisChoices:
    """What the engine offers for the choice axes, as (key, label) pairs; empty: take values as typed."""

    samplers: tuple[tuple[str, str], ...] = ()
    spacings: tuple[str, ...] = ()
    models: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AxisKind:
    name: str  # shown in the dialog, written as "X Type"
    value_type: str  # "int", "float", "text", "size", "sampler", "spacing", "model"
    fields: tuple[str, ...]  # the PanelValues / GenerationRequest fields it sets
    lo: float | None = None
    hi: float | None = None
    named_labels: bool = True  # grid labels read "Steps: 20"; else the value alone
    slow: bool = False  # changing it between cells is costly (a model load): run it in the outer loop
    aliases: tuple[str, ...] = ()  # other names, AUTOMATIC1111's among them


AXIS_KINDS: tuple[AxisKind, ...] = (
    AxisKind("Seed", "int", ("seed",), -1, MAX_SEED),
    AxisKind("Steps", "int", ("steps",), 1, 1000),
    AxisKind("CFG scale", "float", ("cfg_scale",), 0, 100),
    AxisKind("Sampler", "sampler", ("sampler",), named_labels=False, aliases=("Sampler name",)),
    AxisKind("Schedule type", "spacing", ("spacing",), aliases=("Schedule", "Spacing")),
    AxisKind("Prompt S/R", "text", ("prompt", "negative_prompt"), named_labels=False),
    AxisKind("Denoising strength", "float", ("strength",), 0, 1, aliases=("Denoising",)),
    AxisKind("Size", "size", ("width", "height"), 8, 2048),
    AxisKind("Clip skip", "int", ("clip_skip",), 1, 12),
    AxisKind("Guidance rescale", "float", ("guidance_rescale",), 0, 1, aliases=("CFG Rescale phi",)),
    AxisKind("Classifier scale", "float", ("classifier_scale",), 0, 100),
    AxisKind("Var. seed", "int", ("variation_seed",), 0, MAX_SEED, aliases=("Variation seed",)),
    AxisKind("Var. strength", "float", ("variation_strength",), 0, 1, aliases=("Variation seed strength",)),
    AxisKind("Model", "model", ("model",), named_labels=False, slow=True, aliases=("Checkpoint name",)),
)


def axis_kind(name: str) -> AxisKind | None:
    """The axis called ``name`` (any case, AUTOMATIC1111's names too); None for "Nothing" or blank."""
    wanted = name.strip().casefold()
    if wanted in ("", NOTHING.casefold()):
        return None
    for kind in AXIS_KINDS:
        if wanted in (n.casefold() for n in (kind.name, *kind.aliases)):
            return kind
    raise ValueError(f"unknown axis type {name.strip()!r}; choose one of {', '.join(k.name for k in AXIS_KINDS)}")


@dataclass(frozen=True)
class Axis:
    letter: str  # "X", "Y" or "Z"
    kind: AxisKind
    text: str  # the values as typed, written back as "X Values"
    values: tuple[Any, ...]  # parsed: int, float, str or (width, height)
    labels: tuple[str, ...]  # what the grid writes beside each value

    def __len__(self) -> int:
        return len(self.values)

    def changes(self, index: int, prompt: str, negative_prompt: str) -> dict[str, Any]:
        """The fields this axis sets for its ``index``-th value (Prompt S/R edits the given prompts)."""
        value = self.values[index]
        if self.kind.value_type == "text":
            search = self.values[0]
            return {"prompt": prompt.replace(search, value), "negative_prompt": negative_prompt.replace(search, value)}
        if self.kind.value_type == "size":
            return {"width": value[0], "height": value[1]}
        return {self.kind.fields[0]: value}


def split_values(text: str) -> list[str]:
    """Comma separated values, each stripped; double quotes keep a comma inside a value; blanks dropped."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    try:
        return [v.strip() for v in chain.from_iterable(rows) if v.strip()]
    except csv.Error as exc:
        raise ValueError(f"cannot read the values ({exc})") from exc


def _number(text: str, value_type: str) -> float:
    cleaned = re.sub(r"\s+", "", text)
    try:
        value = int(cleaned) if value_type == "int" else float(cleaned)
    except ValueError:
        kind = "a whole number" if value_type == "int" else "a number"
        raise ValueError(f"{text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def expand_range(text: str, value_type: str) -> list[float] | None:
    """The values a range such as ``1-5 (+2)`` or ``1-10 [5]`` stands for; None when ``text`` is no range."""
    match = (INT_RANGE if value_type == "int" else FLOAT_RANGE).fullmatch(text)
    if match is None:
        return None
    start, end = _number(match.group(1), value_type), _number(match.group(2), value_type)
    if match.group(4) is not None:  # [count]: evenly spread, ends included
        count = int(match.group(4))
        if not 1 <= count <= MAX_CELLS:
            raise ValueError(f"{text!r} asks for {count} values; give 1 to {MAX_CELLS}")
        spread = [start + (end - start) * i / (count - 1) for i in range(count)] if count > 1 else [start]
        return [int(v) for v in spread] if value_type == "int" else [round(v, 10) for v in spread]
    step = _number(match.group(3), value_type) if match.group(3) is not None else (1 if end >= start else -1)
    if step == 0 or (end - start) * step < 0:
        raise ValueError(f"{text!r} never reaches {match.group(2).strip()} in steps of {step:g}")
    count = int(math.floor((end - start) / step + 1e-9)) + 1
    if count > MAX_CELLS:
        raise ValueError(f"{text!r} gives {count} values; a plot holds at most {MAX_CELLS} images")
    values = [start + i * step for i in range(count)]
    return values if value_type == "int" else [round(v, 10) for v in values]


def _match_choice(value: str, choices: tuple[tuple[str, str], ...], what: str) -> str:
    """The key of the choice named ``value`` by key or label (any case), else by a unique part of it."""
    if not choices:
        return value
    folded = value.casefold()
    for key, label in choices:
        if folded in (key.casefold(), label.casefold()):
            return key
    partial = [key for key, label in choices if folded in key.casefold() or folded in label.casefold()]
    if len(partial) == 1:
        return partial[0]
    names = ", ".join(label for _, label in choices)
    raise ValueError(f"{'several' if partial else 'no'} {what}s match {value!r}; the {what}s are: {names}")


def _format_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.8g}"


def _parse_one(kind: AxisKind, raw: str, choices: AxisChoices) -> list[Any]:
    """One comma-separated item as its value(s): a range gives several."""
    t = kind.value_type
    if t in ("int", "float"):
        values = expand_range(raw, t)
        values = values if values is not None else [_number(raw, t)]
        for v in values:
            if t == "int" and kind.name == "Seed" and v == -1:
                continue  # -1: a random seed, drawn when the plot is built
            if (kind.lo is not None and v < kind.lo) or (kind.hi is not None and v > kind.hi):
                raise ValueError(f"{_format_number(v)} is outside {_format_number(kind.lo)} to "
                                 f"{_format_number(kind.hi)}")
        return values
    if t == "size":
        match = SIZE_RE.fullmatch(raw)
        if match is None:
            raise ValueError(f"{raw!r} is not a size; write WIDTHxHEIGHT such as 64x48, or 64 for a square")
        width = int(match.group(1))
        height = int(match.group(2)) if match.group(2) else width
        if not (kind.lo <= width <= kind.hi and kind.lo <= height <= kind.hi):
            raise ValueError(f"{raw!r}: width and height must be {kind.lo:g} to {kind.hi:g} pixels")
        return [(width, height)]
    if t == "sampler":
        return [_match_choice(raw, choices.samplers, "sampler")]
    if t == "spacing":
        spacings = tuple((s, s) for s in choices.spacings)
        return [_match_choice(raw, spacings, "schedule type") if spacings else raw.lower()]
    if t == "model":
        # "sd:<path>" names a checkpoint on disk that the catalog need not list; the engine checks it.
        return [raw if raw.startswith("sd:") else _match_choice(raw, choices.models, "model")]
    return [raw]


def _label(kind: AxisKind, value: Any, choices: AxisChoices) -> str:
    t = kind.value_type
    if t == "size":
        text = f"{value[0]}x{value[1]}"
    elif t in ("int", "float"):
        text = _format_number(value)
    elif t in ("sampler", "model"):
        pairs = dict(choices.samplers if t == "sampler" else choices.models)
        text = pairs.get(value, value)
    elif t == "spacing":
        text = "Karras" if value == "karras" else value.capitalize()
    else:
        text = value
    return f"{kind.name}: {text}" if kind.named_labels else text


def parse_axis(letter: str, type_name: str, text: str, choices: AxisChoices = AxisChoices(),  # noqa: B008
               prompt: str = "", negative_prompt: str = "", rng: random.Random | None = None) -> Axis | None:
    """Parse one axis row; None when its type is "Nothing". Raises AxisError naming the axis and value.

    A Prompt S/R axis searches its first value in ``prompt`` and ``negative_prompt``; Seed -1 draws a seed."""
    try:
        kind = axis_kind(type_name)
    except ValueError as exc:
        raise AxisError(letter, str(exc)) from None
    if kind is None:
        return None
    try:
        items = split_values(text)
    except ValueError as exc:
        raise AxisError(letter, f"{kind.name}: {exc}") from None
    if not items:
        raise AxisError(letter, f"{kind.name} has no values; write them separated by commas")
    values: list[Any] = []
    for raw in items:
        try:
            values += _parse_one(kind, raw, choices)
        except ValueError as exc:
            raise AxisError(letter, f"{kind.name}: {exc}") from None
        if len(values) > MAX_CELLS:
            raise AxisError(letter, f"{kind.name} has more than {MAX_CELLS} values")
    if kind.name == "Seed":
        rng = rng or random.Random()
        values = [rng.randint(0, MAX_SEED) if v == -1 else v for v in values]
    if kind.value_type == "text" and values[0] not in prompt and values[0] not in negative_prompt:
        raise AxisError(letter, f"Prompt S/R did not find {values[0]!r} in the prompt or the negative prompt "
                                "(the first value is the text to replace)")
    return Axis(letter, kind, text.strip(), tuple(values), tuple(_label(kind, v, choices) for v in values))
