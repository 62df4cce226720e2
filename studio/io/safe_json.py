"""JSON from files another program (or a crash) may have written: bounded in size and depth.

``json.loads`` raises RecursionError on deeply nested input (100,000 ``[`` is enough) and
happily returns ``Infinity`` and NaN; every loader of user-side files goes through here so
that such a file is refused with a ValueError the caller already handles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_DEPTH = 64  # deeper than any file the studio or the tools it reads write
MAX_BYTES = 64 * 1024 * 1024


class JSONFileError(ValueError):
    """A JSON text or file that cannot be used; the message says why."""


def _reject_constant(name: str) -> Any:
    raise JSONFileError(f"holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JSONFileError(f"holds {text}, which overflows a number")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def loads_limited(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Parse JSON, refusing oversized, too deeply nested or non-finite input with JSONFileError."""
    if len(text) > max_bytes:
        raise JSONFileError(f"is {len(text):,} bytes; the limit is {max_bytes:,}")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise JSONFileError("is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise JSONFileError(f"is not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise JSONFileError(f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except JSONFileError:  # Infinity, NaN, 1e999: the message says which
        raise
    except ValueError:  # an integer over Python's 4,300-digit conversion limit
        raise JSONFileError("holds a number too long to read") from None
    if _depth_exceeds(value, max_depth):
        raise JSONFileError(f"is nested more than {max_depth} levels deep")
    return value


def load_json_file(path: Path, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """``loads_limited`` on a file; OSError (missing, unreadable, a folder) is left to the caller."""
    size = path.stat().st_size
    if size > max_bytes:
        raise JSONFileError(f"{path.name} is {size:,} bytes; the limit is {max_bytes:,}")
    try:
        return loads_limited(path.read_bytes(), max_depth=max_depth, max_bytes=max_bytes)
    except JSONFileError as exc:
        raise JSONFileError(f"{path.name} {exc}") from None
