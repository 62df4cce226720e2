"""AUTOMATIC1111's prompt editing ``[from:to:when]`` and alternation ``[a|b]``: a prompt per step.

A prompt with this syntax becomes a schedule of plain prompts (which still carry
emphasis such as ``(word:1.2)``); the engine encodes each once and switches the
conditioning per step. The rules, as AUTOMATIC1111 (1.6 and later) reads them:

- ``[from:to:when]`` is ``from`` up to and including step ``when``, then ``to``;
  ``[to:when]`` adds ``to`` after step ``when``; ``[from::when]`` removes ``from`` after it.
- ``when`` with a decimal point is a fraction of the steps (``0.25`` of 20 is step 5),
  without one a step number. Steps count from 1.
- ``[a|b|c]`` takes ``a`` at step 1, ``b`` at step 2, ``c`` at step 3, ``a`` at step 4 ...;
  an empty option is allowed (``[fe|]male``).
- They nest, emphasis brackets keep their text (``(a:[b:c:2])``), a plain ``[word]``
  stays de-emphasis, ``\\[`` is a literal bracket. Brackets that fit no rule stay as
  written. A ``|`` outside an alternation, or a lone trailing ``\\``, turns the
  whole prompt into plain text with no schedule (AUTOMATIC1111's parser fails on them).

Checked against AUTOMATIC1111's own grammar on thousands of generated prompts: the
schedules agree wherever every bracket belongs to a construct. Where stray brackets
or colons follow an edit (``2[a:b:2]::``), its general parser sometimes reads the
edit as text too; this one always reads the edit.

Step numbers are those of the run: step ``s`` of a run with ``steps`` steps uses the
first entry whose end is at least ``s``, so ``[a:b:10]`` of 20 steps is ``a`` for steps
1-10 and ``b`` for 11-20, as AUTOMATIC1111 documents it (its sampler loop counts from 0
and switches one step later). Pure Python: the UI may call it without torch.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# Text between brackets: anything but the syntax's own characters, or an escaped character.
_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")
# The 'when' of an edit and the closing bracket: a signed integer or decimal, optionally with an exponent.
_WHEN = re.compile(r"\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*\]")
_RAW = "[]():"  # outside any construct these stand for themselves
MAX_DEPTH = 100  # deeper bracket nesting is read as plain text (and keeps the parser off Python's stack limit)


@dataclass(frozen=True)
class _Edit:
    before: tuple | None  # None: the ``[to:when]`` form
    after: tuple
    when: str  # as written: whether it has a decimal point decides its meaning


@dataclass(frozen=True)
class _Alternation:
    options: tuple[tuple, ...]


# A parsed prompt is a tuple of parts: literal strings, _Edit, _Alternation, or nested tuples.


class _TooDeep(Exception):
    pass


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.memo: dict[int, tuple[tuple, int] | None] = {}  # a construct's result depends only on where it starts

    def prompt(self, pos: int, depth: int) -> tuple[tuple, int]:
        """Plain text and well-formed constructs from ``pos``; stops at anything else."""
        parts: list = []
        text = self.text
        while pos < len(text):
            m = _PLAIN.match(text, pos)
            if m:
                parts.append(m.group(0))
                pos = m.end()
                continue
            if text[pos] not in "([":
                break
            found = self.construct(pos, depth + 1)
            if found is None:
                break
            parts.append(found[0])
            pos = found[1]
        return tuple(parts), pos

    def construct(self, pos: int, depth: int) -> tuple[object, int] | None:
        if pos not in self.memo:
            if depth > MAX_DEPTH:
                raise _TooDeep
            self.memo[pos] = self._round(pos, depth) if self.text[pos] == "(" else self._square(pos, depth)
        return self.memo[pos]

    def _at(self, pos: int, char: str) -> bool:
        return pos < len(self.text) and self.text[pos] == char

    def _round(self, pos: int, depth: int):
        first, pos = self.prompt(pos + 1, depth)
        if self._at(pos, ")"):
            return ("(", first, ")"), pos + 1
        if self._at(pos, ":"):
            second, end = self.prompt(pos + 1, depth)
            if self._at(end, ")"):
                return ("(", first, ":", second, ")"), end + 1
        return None

    def _square(self, pos: int, depth: int):
        first, pos = self.prompt(pos + 1, depth)
        if self._at(pos, "]"):
            return ("[", first, "]"), pos + 1  # emphasis: the brackets stay in the text
        if self._at(pos, "|"):
            options = [first]
            while self._at(pos, "|"):
                option, pos = self.prompt(pos + 1, depth)
                options.append(option)
            return (_Alternation(tuple(options)), pos + 1) if self._at(pos, "]") else None
        if not self._at(pos, ":"):
            return None
        when = _WHEN.match(self.text, pos + 1)
        if when:
            return _Edit(None, first, when.group(1)), when.end()
        second, pos = self.prompt(pos + 1, depth)
        if self._at(pos, ":") and (when := _WHEN.match(self.text, pos + 1)):
            return _Edit(first, second, when.group(1)), when.end()
        return None

    def parse(self) -> tuple | None:
        """The whole prompt, or None where AUTOMATIC1111's parser would fail."""
        parts: list = []
        pos = 0
        while True:
            part, pos = self.prompt(pos, 0)
            parts.append(part)
            if pos >= len(self.text):
                return tuple(parts)
            if self.text[pos] not in _RAW:  # a stray '|' or a lone trailing backslash
                return None
            parts.append(self.text[pos])  # a bracket or colon that fits no rule: kept as written
            pos += 1


def _step_of(when: str, steps: int) -> int:
    """The last step of an edit's first half, clamped to [0, steps] (0: from the first step on)."""
    value = float(when)
    if "." in when:
        value *= steps
    if value >= steps:
        return steps
    return int(value) if value >= 1 else 0


@dataclass(frozen=True)
class _Switch:
    """An edit with its step resolved: ``before`` up to and including step ``last``, then ``after``."""

    last: int
    before: object
    after: object


@dataclass(frozen=True)
class _Cycle:
    options: tuple


def _compile(node, steps: int, lasts: set[int], cycles: set[int]):
    """Resolve every edit's step once and fold fixed text into strings.

    Collects each edit's last step in ``lasts`` and each alternation's length in ``cycles``.
    """
    if isinstance(node, str):
        return node
    if isinstance(node, _Edit):
        last = _step_of(node.when, steps)
        lasts.add(last)
        return _Switch(last, _compile(node.before or (), steps, lasts, cycles),
                       _compile(node.after, steps, lasts, cycles))
    if isinstance(node, _Alternation):
        cycles.add(len(node.options))
        return _Cycle(tuple(_compile(option, steps, lasts, cycles) for option in node.options))
    parts: list = []
    for child in node:
        part = _compile(child, steps, lasts, cycles)
        if isinstance(part, str) and parts and isinstance(parts[-1], str):
            parts[-1] += part
        elif not (isinstance(part, str) and part == ""):
            parts.append(part)
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else tuple(parts)


def _text_at(node, step: int) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, _Switch):
        return _text_at(node.before if step <= node.last else node.after, step)
    if isinstance(node, _Cycle):
        return _text_at(node.options[(step - 1) % len(node.options)], step)
    return "".join(_text_at(child, step) for child in node)


def prompt_schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """``[(end_step, text), ...]``: ``text`` is the prompt for the steps after the previous end up to ``end_step``.

    The last entry ends at ``steps``. A prompt without editing syntax is ``[(steps, prompt)]``.
    """
    if steps < 1:
        raise ValueError(f"a schedule needs at least one step, got {steps}")
    if "[" not in prompt:
        return [(steps, prompt)]
    try:
        tree = _Parser(prompt).parse()
    except _TooDeep:
        tree = None
    if tree is None:
        return [(steps, prompt)]
    lasts: set[int] = set()
    cycles: set[int] = set()
    compiled = _compile(tree, steps, lasts, cycles)
    ends = {steps} | {last for last in lasts if last >= 1} | (set(range(1, steps + 1)) if cycles else set())
    # A step's text depends only on how many edits it is past and where each alternation stands:
    # steps that agree on both share one evaluation (alternations repeat every few steps).
    edit_steps, lengths = sorted(lasts), sorted(cycles)
    texts: dict[tuple[int, ...], str] = {}
    schedule = []
    for end in sorted(ends):
        key = (bisect.bisect_left(edit_steps, end), *(end % n for n in lengths))
        if key not in texts:
            texts[key] = _text_at(compiled, end)
        schedule.append((end, texts[key]))
    return schedule


def prompt_at(schedule: list[tuple[int, str]], step: int) -> str:
    """The prompt of step ``step`` (counted from 1) in a schedule from :func:`prompt_schedule`."""
    for end, text in schedule:
        if step <= end:
            return text
    return schedule[-1][1]


def prompts_per_step(prompt: str, steps: int) -> list[str]:
    """The prompt of each step 1..steps, as a list indexed from 0."""
    schedule = prompt_schedule(prompt, steps)
    out: list[str] = []
    for end, text in schedule:
        out.extend([text] * (end - len(out)))
    return out
