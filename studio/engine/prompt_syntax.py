"""AUTOMATIC1111's prompt emphasis syntax: ``(word)``, ``[word]``, ``(word:1.3)``, ``BREAK``.

Prompts copied from AUTOMATIC1111, Forge, Civitai or a PNG's parameters carry this
syntax; read literally, its brackets and numbers become tokens that pull the picture
somewhere odd. The rules, as users know them from AUTOMATIC1111:

- ``(text)`` multiplies the attention to ``text`` by 1.1, ``[text]`` divides it by 1.1;
  brackets nest and multiply; ``(text:1.5)`` sets an explicit factor.
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the literal characters.
- An unclosed bracket applies to the rest of the prompt; a stray closing one is dropped.
- ``BREAK`` (upper case, a word on its own) ends the current 75-token chunk.
- Brackets opened while 32 others are open weigh nothing (see MAX_WEIGHING_DEPTH).
"""

from __future__ import annotations

import re

ROUND = 1.1
SQUARE = 1 / 1.1
BREAK = None  # a segment whose text is None marks a BREAK
# Brackets open at once that still weigh. Each closing bracket rescales every run since its opening,
# so unbounded nesting costs (runs x depth): 2,000 unclosed "[a:" took 1.6 s on the engine thread,
# a 20,000-character prompt of them ~20 s. Real prompts nest a handful deep; brackets past this depth
# are read as brackets (no text) that weigh nothing.
MAX_WEIGHING_DEPTH = 32

# One token of the syntax per match, in priority order.
_TOKEN = re.compile(
    r"""
      \\[()\[\]\\]            # escaped bracket or backslash: a literal
    | \\                      # a lone backslash: a literal
    | [(\[]                   # opening bracket
    | :\s*([+-]?[.\d]+)\s*\)  # ':1.3)' closes a round bracket with an explicit weight
    | [)\]]                   # closing bracket
    | [^\\()\[\]:]+           # plain text
    | :                       # a colon that does not close a weight
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


def parse_prompt_weights(prompt: str) -> list[tuple[str | None, float]]:
    """Split a prompt into (text, weight) runs; ``(None, 1.0)`` marks a BREAK.

    Adjacent runs with the same weight are merged; an empty prompt is ``[("", 1.0)]``.
    """
    runs: list[list] = []  # [text, weight] pairs; mutable while brackets close
    # Index in runs where each open bracket started; None for one opened past MAX_WEIGHING_DEPTH.
    open_round: list[int | None] = []
    open_square: list[int | None] = []
    weighing = 0  # open brackets that are not None

    def scale(start: int | None, factor: float) -> None:
        nonlocal weighing
        if start is None:
            return
        weighing -= 1
        for run in runs[start:]:
            if run[0] is not BREAK:
                run[1] *= factor

    def opened() -> int | None:
        nonlocal weighing
        if weighing >= MAX_WEIGHING_DEPTH:
            return None
        weighing += 1
        return len(runs)

    for match in _TOKEN.finditer(prompt):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            runs.append([token[1:] or "\\", 1.0])
        elif token == "(":
            open_round.append(opened())
        elif token == "[":
            open_square.append(opened())
        elif weight is not None and open_round:
            scale(open_round.pop(), _number(weight))
        elif token.startswith(":"):
            # A ':1.3)' outside any round bracket is text, as is a bare colon.
            runs.append([token, 1.0])
        elif token == ")":
            if open_round:
                scale(open_round.pop(), ROUND)
        elif token == "]":
            if open_square:
                scale(open_square.pop(), SQUARE)
        else:
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    runs.append([BREAK, 1.0])
                runs.append([part, 1.0])
    for start in open_round:
        scale(start, ROUND)
    for start in open_square:
        scale(start, SQUARE)
    merged: list[tuple[str | None, float]] = []
    for text, weight in runs:
        if text == "":
            continue
        if merged and text is not BREAK and merged[-1][0] is not BREAK and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + text, weight)
        else:
            merged.append((text, weight))
    return merged or [("", 1.0)]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # e.g. '1.2.3': A1111 would fail; treat as no emphasis
        return 1.0


def plain_text(prompt: str) -> str:
    """The prompt with the syntax removed (for models that do not weight tokens)."""
    return "".join(" " if t is BREAK else t for t, _ in parse_prompt_weights(prompt)).strip()
