"""The last line of an infotext, ``Steps: 20, Sampler: Euler, Hashes: {"a": "b, c"}``, as key: value pairs.

AUTOMATIC1111 quotes a value holding a comma as a JSON string; ComfyUI image savers write JSON
objects and lists unquoted. Both are taken whole. One pass, linear in the line's length (a regex
over the whole line was quadratic: 10 s for a 32,000-character line).
"""

from __future__ import annotations

import json
import re

MAX_BRACKETED_CHARS = 100_000  # a JSON value longer than this is cut at its first comma instead

_KEY_RE = re.compile(r"\w[\w \-/+]*?:")  # a key and its colon (A1111 keys: words, spaces, - / +)
_QUOTED_RE = re.compile(r'"(?:\\.|[^\\"])*"')
_BRACKET_STOP_RE = re.compile(r'["{}\[\]]')
_SEPARATORS_RE = re.compile(r"[ \t,]*")


def _closing_bracket(line: str, start: int) -> int:
    """Index just past the bracket that closes line[start] ('{' or '['), or -1; strings are skipped."""
    depth, i = 0, start
    stop = min(len(line), start + MAX_BRACKETED_CHARS)
    while (m := _BRACKET_STOP_RE.search(line, i, stop)) is not None:
        c, i = m.group(), m.start()
        if c == '"':
            quoted = _QUOTED_RE.match(line, i)
            if quoted is None:
                return -1
            i = quoted.end()
            continue
        depth += 1 if c in "{[" else -1
        i += 1
        if depth == 0:
            return i
    return -1


def split_pairs(line: str) -> list[tuple[str, str]]:
    """``key: value`` pairs of a parameters line; segments that are not pairs are skipped.

    Linear time: a quoted value ends at the next unescaped quote, so quoted scans never overlap; a
    bracket scan that fails (unclosed, or closed but not followed by a separator) disables bracket
    scans for the rest of the line, so at most one bracket scan is wasted.
    """
    pairs: list[tuple[str, str]] = []
    pos, n = 0, len(line)
    quotes_close = brackets_close = True  # False once a scan of that kind has failed
    while pos < n:
        pos = _SEPARATORS_RE.match(line, pos).end()
        key = _KEY_RE.match(line, pos)
        if key is None:
            comma = line.find(",", pos)
            pos = n if comma < 0 else comma + 1
            continue
        pos = key.end()
        while pos < n and line[pos] in " \t":
            pos += 1
        end = -1
        if pos < n and line[pos] == '"' and quotes_close:
            m = _QUOTED_RE.match(line, pos)
            end = m.end() if m else -1
            quotes_close = m is not None  # no later quote would close either: the same tail follows it
        elif pos < n and line[pos] in "{[" and brackets_close:
            end = _closing_bracket(line, pos)
            brackets_close = end >= 0 and (end == n or line[end] in ", \t")
            end = end if brackets_close else -1
        if end < 0 or (end < n and line[end] not in ", \t"):
            comma = line.find(",", pos)
            end = n if comma < 0 else comma
        pairs.append((key.group()[:-1].strip(), _unquote(line[pos:end])))
        pos = end
    return pairs


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            text = json.loads(value)
        except ValueError:
            return value[1:-1]
        return text if isinstance(text, str) else value[1:-1]
    return value
