"""The panel's ControlNet units: what each is set to, and how saved or restored units are made to fit.

Torch-free, like the rest of studio/state. The engine's request carries ``ControlUnit``s with their
control images; the panel keeps only the settings (``ControlSettings``) and the engine thread joins
them with the canvas's control layer (studio/worker/engine_session.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .panel_limits import Choices, Range

CONTROL_UNITS = 3  # units in the panel (sd-webui-controlnet's default count)
# The engine's preprocessors that need no downloaded weights (studio/engine/control_preprocess.py; kept in step
# by tests/test_state_control_units.py).
CONTROL_PREPROCESSORS = ("none", "canny", "scribble", "scribble_xdog", "invert", "lineart_strokes")
MAX_CONTROL_WEIGHT = 4.0  # the engine's limit (request.py); sd-webui-controlnet's slider ends at 2
PREPROCESSOR_CHOICES = Choices(CONTROL_PREPROCESSORS)
CONTROL_RANGES: dict[str, Range] = {  # a unit's numbers
    "weight": Range(0.0, MAX_CONTROL_WEIGHT),
    "start": Range(0.0, 1.0),
    "end": Range(0.0, 1.0),
}


@dataclass(frozen=True)
class ControlSettings:
    """One ControlNet unit as the panel holds it; off units keep their settings for when they are turned on."""

    enabled: bool = False
    model: str = ""  # a ControlNet's name as the engine lists it (file stem) or a path
    preprocessor: str = "none"
    weight: float = 1.0
    start: float = 0.0  # fraction of the run (sd-webui-controlnet's "Guidance Start")
    end: float = 1.0

    def problem(self, number: int) -> str | None:
        """What keeps this unit from running, said for the panel; None when it can (or is off)."""
        if not self.enabled:
            return None
        if not self.model.strip():
            return f"ControlNet unit {number}: choose a ControlNet model."
        if self.start >= self.end:
            return f"ControlNet unit {number}: start must be before end."
        return None


DEFAULT_UNITS: tuple[ControlSettings, ...] = (ControlSettings(),) * CONTROL_UNITS


def _clean_text(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from JSON


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        not (isinstance(value, float) and math.isnan(value))


def _fields_of(item: Any) -> dict[str, Any] | None:
    """A unit's fields from saved JSON (a dict) or a parsed request (a ControlUnit: on by being there)."""
    if isinstance(item, dict):
        return item
    names = ("model", "preprocessor", "weight", "start", "end")
    if all(hasattr(item, name) for name in names) and not isinstance(item, str | bytes):
        return {"enabled": True, **{name: getattr(item, name) for name in names}}
    return None


def _adapt_unit(data: dict[str, Any], current: ControlSettings, number: int) -> tuple[ControlSettings, list[str]]:
    changes: dict[str, Any] = {}
    notices: list[str] = []
    label = f"ControlNet unit {number}"
    if "enabled" in data:
        if isinstance(data["enabled"], bool):
            changes["enabled"] = data["enabled"]
        else:
            notices.append(f"{label}: enabled {_shown(data['enabled'])} is not true or false: kept.")
    if "model" in data:
        if isinstance(data["model"], str):
            changes["model"] = _clean_text(data["model"])
        else:
            notices.append(f"{label}: model {_shown(data['model'])} is not text: kept {current.model!r}.")
    if "preprocessor" in data:
        if PREPROCESSOR_CHOICES.holds(data["preprocessor"]):
            changes["preprocessor"] = data["preprocessor"]
        else:
            notices.append(f"{label}: preprocessor {_shown(data['preprocessor'])} is not one the studio has "
                           f"({', '.join(CONTROL_PREPROCESSORS)}): kept {current.preprocessor}.")
    for name, limit in CONTROL_RANGES.items():
        if name not in data:
            continue
        value = data[name]
        if not _number(value):
            notices.append(f"{label}: {name} {_shown(value)} is not a number: kept {getattr(current, name)}.")
        else:
            bounded = float(limit.bound(value))
            if bounded != value:
                notices.append(f"{label}: {name} {_shown(value)} is outside {limit.lo:g}–{limit.hi:g}: "
                               f"set to {bounded:g}.")
            changes[name] = bounded
    unit = replace(current, **changes)
    if unit.start >= unit.end:
        notices.append(f"{label}: start {unit.start:g} is not before end {unit.end:g}: set to 0–1.")
        unit = replace(unit, start=0.0, end=1.0)
    return unit, notices


def adapt_units(value: Any, current: tuple[ControlSettings, ...]) -> tuple[tuple[ControlSettings, ...], str | None]:
    """``value`` (saved JSON: a list of dicts; restored parameters: ControlUnits) as the panel's units.

    Units a parameters text does not name are switched off (their settings kept): restoring an image
    reproduces it whatever the panel held. One notice line for everything that had to be adapted."""
    current = tuple(current[:CONTROL_UNITS]) + DEFAULT_UNITS[len(current):]
    if not isinstance(value, list | tuple):
        return current, f"ControlNet units {_shown(value)} are not a list: kept."
    notices: list[str] = []
    units = list(current)
    from_request = bool(value) and not isinstance(value[0], dict)
    if from_request or not value:
        units = [replace(unit, enabled=False) for unit in units]
    for i, item in enumerate(value[:CONTROL_UNITS]):
        data = _fields_of(item)
        if data is None:
            notices.append(f"ControlNet unit {i + 1} {_shown(item)} is not a unit: kept.")
            continue
        units[i], unit_notices = _adapt_unit(data, units[i], i + 1)
        notices.extend(unit_notices)
    if len(value) > CONTROL_UNITS:
        notices.append(f"{len(value)} ControlNet units: the panel has {CONTROL_UNITS}, the rest are left out.")
    return tuple(units), " ".join(notices) or None


def units_to_json(units: tuple[ControlSettings, ...]) -> list[dict[str, Any]]:
    return [{"enabled": u.enabled, "model": u.model, "preprocessor": u.preprocessor, "weight": u.weight,
             "start": u.start, "end": u.end} for u in units]
