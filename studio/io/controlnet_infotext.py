"""ControlNet units in the parameters text, as sd-webui-controlnet writes and reads them.

One pair per unit, numbered from 0, its value a quoted list of its own pairs (the extension's
``ControlNetUnit.serialize``, v1.1.4xx)::

    ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0,
    Resize Mode: Just Resize, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0,
    Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: False, Control Mode: Balanced"

(on one line). Reading also takes the extension's earlier spelling (``preprocessor: canny, model: ...,
weight: 1, starting/ending: (0, 1), ...``). The control image is not in the text: a unit read back
has none, and the window or the command line gives it one. Torch-free.
"""

from __future__ import annotations

import math
import re

from ..engine.control_preprocess import CANNY_HIGH, CANNY_LOW, NEEDS_WEIGHTS, PREPROCESSORS, XDOG_THRESHOLD
from ..engine.request import MAX_CONTROL_WEIGHT, ControlUnit

MAX_UNITS = 16  # more "ControlNet N" pairs than any UI offers: the rest are left out with a notice
_UNIT_KEY_RE = re.compile(r"controlnet[ -]?(\d{1,3})")
_FIELD_RE = re.compile(r"\s*([^:,]{1,40}):\s*(\([^()]{0,80}\)|[^,]{0,300})")
_HASH_RE = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$")
# sd-webui-controlnet modules that are the studio's preprocessors under another name.
MODULE_ALIASES = {"invert (from white bg & black line)": "invert", "threshold": "scribble", "scribble": "scribble"}
# Modes the studio runs as it runs its own (the control image is already the run's size, so "Just Resize").
BALANCED = "Balanced"


def _num(value: float) -> str:
    """A number the way the extension writes its float fields (Python's str of a float: 1.0, 0.35)."""
    return str(float(value))


def format_unit(unit: ControlUnit, model_label: str, width: int, height: int) -> str:
    """One unit's value (``model_label``: the ControlNet's name and short hash, ``name [0123abcd]``)."""
    module = unit.preprocessor or "none"
    res, a, b = -1, -1.0, -1.0
    if module == "canny":
        res, a, b = min(width, height), float(CANNY_LOW), float(CANNY_HIGH)
    elif module == "scribble_xdog":
        res, a = min(width, height), float(XDOG_THRESHOLD)
    fields = (("Module", module), ("Model", model_label), ("Weight", _num(unit.weight)),
              ("Resize Mode", "Just Resize"), ("Processor Res", str(res)), ("Threshold A", _num(a)),
              ("Threshold B", _num(b)), ("Guidance Start", _num(unit.start)), ("Guidance End", _num(unit.end)),
              ("Pixel Perfect", "False"), ("Control Mode", BALANCED))
    # The extension splits on ", " and ": ": a name holding either would not read back there.
    return ", ".join(f"{k}: {str(v).replace(',', ' ').replace(': ', ' ')}" for k, v in fields)


def _fields(text: str) -> dict[str, str]:
    return {m.group(1).strip().lower(): m.group(2).strip() for m in _FIELD_RE.finditer(text)}


def _fraction(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_units(params: dict[str, tuple[str, str]]) -> tuple[tuple[ControlUnit, ...], list[str], set[str]]:
    """The units in parsed pairs (lower-case key -> (key, value)): (units in order, notices, keys used)."""
    found: list[tuple[int, str, str]] = []
    for low, (written, value) in params.items():
        m = _UNIT_KEY_RE.fullmatch(low)
        if m is not None:
            found.append((int(m.group(1)), written, value))
    found.sort()
    notices: list[str] = []
    if len(found) > MAX_UNITS:
        notices.append(f"{len(found)} ControlNet units: the first {MAX_UNITS} were read.")
    units = []
    for _, written, value in found[:MAX_UNITS]:
        unit, unit_notices = _read_unit(written, value)
        notices += unit_notices
        if unit is not None:
            units.append(unit)
    return tuple(units), notices, {low for low in params if _UNIT_KEY_RE.fullmatch(low)}


def _read_unit(label: str, text: str) -> tuple[ControlUnit | None, list[str]]:
    f = _fields(text)
    notices: list[str] = []
    model = _HASH_RE.sub("", f.get("model", "")).strip()
    if not model or model.lower() == "none":
        return None, [f"{label} names no ControlNet model: left out."]
    module = f.get("module", f.get("preprocessor", "none")).strip().lower() or "none"
    module = MODULE_ALIASES.get(module, module)
    if module not in PREPROCESSORS:
        why = f"needs {NEEDS_WEIGHTS[module]}" if module in NEEDS_WEIGHTS else "is not in this studio"
        notices.append(f"{label}: preprocessor {module!r} {why}: set to none (give it a ready control map).")
        module = "none"
    weight = _fraction(f.get("weight", "1"))
    if weight is None or not 0 <= weight <= MAX_CONTROL_WEIGHT:
        notices.append(f"{label}: weight {f.get('weight')!r} is not a number from 0 to {MAX_CONTROL_WEIGHT:g}: "
                       "set to 1.")
        weight = 1.0
    start, end = _fraction(f.get("guidance start", "0")), _fraction(f.get("guidance end", "1"))
    if "starting/ending" in f:  # the extension's earlier spelling: "(0, 1)"
        parts = f["starting/ending"].strip("() ").split(",")
        start, end = (_fraction(parts[0]), _fraction(parts[1])) if len(parts) == 2 else (None, None)
    if start is None or end is None or not 0 <= start < end <= 1:
        notices.append(f"{label}: guidance start {start} and end {end} are not 0 <= start < end <= 1: "
                       "set to 0 and 1.")
        start, end = 0.0, 1.0
    mode = f.get("control mode", BALANCED)
    if mode.lower() not in (BALANCED.lower(), "0"):
        notices.append(f"{label}: control mode {mode!r} is not in this studio (it runs Balanced): not applied.")
    return ControlUnit(model, None, module, weight, start, end), notices
