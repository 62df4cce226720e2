"""Generation parameters as text, in the format AUTOMATIC1111 writes into PNGs.

    a prompt, over one or more lines
    Negative prompt: a negative prompt
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model: m

A value holding a comma, colon or newline is written as a JSON string. The
reader also takes what other tools write: AUTOMATIC1111 before 1.9 ("DPM++ 2M
Karras") and after ("Schedule type: Automatic"), Forge ("Distilled CFG Scale"),
ComfyUI image savers ("dpmpp_2m_karras", "CFG Scale", unquoted JSON values).
Anything it cannot use is reported in ``notices`` and the base request's value
kept: a sampler the studio does not have is named, never silently replaced.
Reading never raises on any text but ParametersError (for text too long to be
parameters), and takes time linear in the text's length.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..engine.limits import MAX_FEATHER, MAX_RESAMPLE
from ..engine.request import MAX_CLIP_SKIP, MAX_SEED, GenerationRequest
from ..engine.sampler_names import (
    FOREIGN_SCHEDULES,
    SAMPLER_NAMES,
    SCHEDULE_SPACINGS,
    SamplerName,
    find_sampler,
    sampler_list,
)
from .controlnet_infotext import read_units
from .hires_infotext import hires_pairs, read_hires
from .infotext_pairs import split_pairs
from .inpaint_infotext import inpaint_pairs, read_inpaint
from .tile_infotext import OFF_WHEN_ABSENT as TILES_OFF_WHEN_ABSENT
from .tile_infotext import read_tiles, tile_pairs

NEGATIVE = "Negative prompt:"
MAX_TEXT_CHARS = 4_000_000  # Pillow refuses PNG text chunks over 1 MB; EXIF comments are smaller still
MAX_STEPS = 1000
MAX_CFG = 100.0
MAX_VALUE_CHARS = 64  # longer than any number, size or interval: not parsed as one (and no regex runs long)

_INT_RE = re.compile(r"[+-]?\d{1,40}")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SIZE_RE = re.compile(r"(\d{1,9})\s*[x×]\s*(\d{1,9})")
_INTERVAL_RE = re.compile(r"(\d+\.?\d*(?:[eE][+-]?\d+)?)\s*-\s*(\d+\.?\d*(?:[eE][+-]?\d+)?)")


class ParametersError(ValueError):
    """Parameters text the studio cannot use; the message says why."""


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n"') else text


def _unquoted(value: str) -> str:
    """An infotext value as plain text: one given already JSON-quoted is not quoted twice."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        if isinstance(inner, str):
            return inner
    return value


def _number(value: float) -> str:
    return f"{value:g}"


def format_parameters(request: GenerationRequest, model_label: str = "",
                      infotext: Sequence[tuple[str, str]] = ()) -> str:
    """The parameters text for a request, AUTOMATIC1111 style.

    ``infotext``: the pairs the engine found while running (``Result.infotext``: "Lora hashes", ...),
    written after the request's own, each value quoted as AUTOMATIC1111 quotes it.
    """
    spec = find_sampler(request.sampler)
    if spec is None:
        raise ValueError(f"unknown sampler {request.sampler!r}; choose one of {sampler_list()}")
    pairs: list[tuple[str, object]] = [
        ("Steps", request.steps),
        ("Sampler", spec.label),
        ("Schedule type", "Karras" if request.spacing == "karras" else request.spacing.capitalize()),
        ("CFG scale", _number(request.cfg_scale)),
        ("Seed", request.seed),
        ("Size", f"{request.width}x{request.height}"),
    ]
    if model_label or request.model:
        pairs.append(("Model", model_label or request.model))
    if request.variation_strength > 0:  # as AUTOMATIC1111: written only when a variation is on
        pairs.append(("Variation seed", request.variation_seed))
        pairs.append(("Variation seed strength", _number(request.variation_strength)))
    if request.init_image is not None:
        pairs.append(("Denoising strength", _number(request.strength)))
    pairs += hires_pairs(request)  # with its own "Denoising strength" (hires fix runs without an init image)
    if request.mask is not None:
        pairs.append(("Mask blur", _number(request.mask_feather)))
        pairs += inpaint_pairs(request)
        if request.resample:
            pairs.append(("RePaint resample", request.resample))
    if request.guidance_rescale:
        pairs.append(("CFG Rescale phi", _number(request.guidance_rescale)))
    if request.guidance_interval is not None:
        lo, hi = request.guidance_interval
        pairs.append(("Guidance interval", f"{lo:g}-{hi:g}"))
    if request.classifier_scale:
        pairs.append(("Classifier scale", _number(request.classifier_scale)))
    if request.dynamic_threshold is not None:
        pairs.append(("Dynamic threshold", _number(request.dynamic_threshold)))
    if request.clip_skip != 1:
        pairs.append(("Clip skip", request.clip_skip))
    if spec.name == "ddim" and request.eta:
        pairs.append(("Eta DDIM", _number(request.eta)))
    pairs += tile_pairs(request)
    pairs += [(key, _unquoted(value)) for key, value in infotext]
    if request.model:
        pairs.append(("Studio model", request.model))
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"{NEGATIVE} {request.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs))
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedParameters:
    request: GenerationRequest
    model_label: str = ""
    unknown: dict[str, str] = field(default_factory=dict)  # keys this studio does not use, as written
    adapted: tuple[tuple[str, str], ...] = ()  # (request field, one-line notice) per value adapted or left out
    given: frozenset[str] = frozenset()  # the request fields the text set
    missing_sampler: str = ""  # a sampler the text names that the studio does not have (the base's is kept)

    @property
    def notices(self) -> tuple[str, ...]:
        return tuple(notice for _, notice in self.adapted)


# -- values ------------------------------------------------------------------------------------------------

def _as_number(text: str) -> int | float | None:
    """An int (any size) or a finite float written in ``text``, else None."""
    text = text.strip()
    if len(text) > MAX_VALUE_CHARS:
        return None
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else None
    return None


_PLAIN_RE = re.compile(r"[\w.+\-]{1,40}")


def _shown(text: str) -> str:
    """A value for a notice: as written when it is one plain word or number, else quoted (and cut short)."""
    text = text.strip()
    if _PLAIN_RE.fullmatch(text):
        return text
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


class _Reader:
    """Takes values out of the pairs into request changes, noting what it adapted or left out."""

    def __init__(self, params: dict[str, tuple[str, str]], base: GenerationRequest):
        self.params = params  # lower-case key -> (key as written, value)
        self.base = base
        self.changes: dict[str, object] = {}
        self.notices: list[tuple[str, str]] = []  # (request field, notice)
        self.used: set[str] = set()

    def note(self, field: str, text: str) -> None:
        self.notices.append((field, text))

    def raw(self, *keys: str) -> tuple[str, str] | None:
        for key in keys:
            if key in self.params:
                self.used.add(key)
                return self.params[key]
        return None

    def number(self, keys: tuple[str, ...], name: str, lo: float, hi: float, whole: bool = False) -> None:
        found = self.raw(*keys)
        if found is None:
            return
        label, text = found
        value = _as_number(text)
        if value is None or (whole and not float(value).is_integer()):
            kind = "a whole number" if whole else "a number"
            self.note(name, f"{label} {_shown(text)} is not {kind}: kept {getattr(self.base, name)}.")
            return
        bounded = min(max(value, lo), hi)
        if bounded != value:
            side = "more" if value > hi else "less"
            self.note(name, f"{label} {_shown(text)} is {side} than {_number(hi if value > hi else lo)}: "
                            f"set to {_number(bounded)}.")
        self.changes[name] = int(bounded) if whole else float(bounded)


def _schedule(text: str) -> str | None:
    """The studio spacing an A1111 schedule label or ComfyUI scheduler key means (None: none)."""
    return SCHEDULE_SPACINGS.get(text.strip().lower())


def _split_sampler(label: str) -> tuple[SamplerName | None, str | None]:
    """(sampler, schedule written with it) for "DPM++ 2M Karras", "dpmpp_2m_karras", "euler simple", ..."""
    low = label.strip().lower()
    for schedule in (*sorted(SCHEDULE_SPACINGS, key=len, reverse=True), *FOREIGN_SCHEDULES):
        for sep in (" ", "_"):
            if low.endswith(sep + schedule) and len(low) > len(schedule) + 1:
                sampler = find_sampler(low[: -len(schedule) - 1])
                if sampler is not None:
                    return sampler, schedule
    return None, None


def _read_sampler(r: _Reader) -> str:
    """Sampler and spacing into the changes; the sampler's name as written when the studio lacks it."""
    sampler_raw = r.raw("sampler")
    schedule_raw = r.raw("schedule type", "scheduler", "scheduler type")
    sampler, written_schedule, missing = None, None, ""
    if sampler_raw is not None:
        sampler = find_sampler(sampler_raw[1])
        if sampler is None:
            sampler, written_schedule = _split_sampler(sampler_raw[1])
        if sampler is None:
            kept = find_sampler(r.base.sampler)
            r.note("sampler", f"Sampler {_shown(sampler_raw[1].strip())} is not in this studio (it has "
                              f"{', '.join(s.label for s in SAMPLER_NAMES)}): kept "
                              f"{kept.label if kept else r.base.sampler}.")
            missing = sampler_raw[1].strip()
        else:
            r.changes["sampler"] = sampler.name
    schedule = schedule_raw[1].strip() if schedule_raw is not None else written_schedule
    if schedule is None:
        pass
    elif schedule.lower() == "automatic":  # the sampler's own default (a sampler the studio lacks: kept as is)
        if sampler is not None:
            r.changes["spacing"] = sampler.automatic
    elif (spacing := _schedule(schedule)) is None:
        r.note("spacing", f"Schedule {_shown(schedule)} is not in this studio (it has Karras, Uniform, "
                          f"SGM Uniform, Simple, Normal, DDIM): kept {r.base.spacing}.")
    else:
        r.changes["spacing"] = spacing
    return missing


def _read_seed(r: _Reader) -> None:
    found = r.raw("seed")
    if found is None:
        return
    label, text = found
    value = _as_number(text)
    if not isinstance(value, int) or value < 0:
        r.note("seed", f"{label} {_shown(text)} is not a whole number from 0: kept {r.base.seed}.")
    elif value > MAX_SEED:
        r.changes["seed"] = value % (MAX_SEED + 1)
        r.note("seed", f"{label} {_shown(text)} is more than the studio's {MAX_SEED}: "
                       f"set to {r.changes['seed']} (the remainder).")
    else:
        r.changes["seed"] = value


def _read_variation(r: _Reader) -> None:
    r.number(("variation seed",), "variation_seed", 0, MAX_SEED, whole=True)
    r.number(("variation seed strength",), "variation_strength", 0, 1)


# Keys written only when their setting is on (here and in AUTOMATIC1111), with the value that "absent"
# means. A settings line without one was made with it off: restoring it must not keep the panel's own
# value, or the same settings would give another image.
OFF_WHEN_ABSENT: tuple[tuple[str, str, object], ...] = (
    ("variation seed strength", "variation_strength", 0.0),
    ("cfg rescale phi", "guidance_rescale", 0.0),
    ("guidance interval", "guidance_interval", None),
    ("classifier scale", "classifier_scale", 0.0),
    ("dynamic threshold", "dynamic_threshold", None),
    ("clip skip", "clip_skip", 1),
    ("refiner", "refiner", ""),
    *TILES_OFF_WHEN_ABSENT,
)  # Not eta nor RePaint resample: they are written only with DDIM or a mask, so absence says nothing.


def _switch_off_absent(r: _Reader) -> None:
    for key, name, off in OFF_WHEN_ABSENT:
        if key not in r.params:
            r.changes[name] = off


def _read_size(r: _Reader) -> None:
    # Taken as written (at most nine digits a side): fitting a size to a model, and refusing one no model
    # can draw, is model_fit's and validate_request's work.
    found = r.raw("size")
    if found is None:
        return
    label, text = found
    m = _SIZE_RE.fullmatch(text.strip()) if len(text) <= MAX_VALUE_CHARS else None
    if m is None:
        r.note("width", f"{label} {_shown(text)} is not WIDTHxHEIGHT: kept {r.base.width}x{r.base.height}.")
        return
    r.changes["width"], r.changes["height"] = int(m.group(1)), int(m.group(2))


def _read_interval(r: _Reader) -> None:
    found = r.raw("guidance interval")
    if found is None:
        return
    label, text = found
    m = _INTERVAL_RE.fullmatch(text.strip()) if len(text) <= MAX_VALUE_CHARS else None
    lo, hi = (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        r.note("guidance_interval", f"{label} {_shown(text)} is not LOW-HIGH with LOW < HIGH: "
                                    f"kept {r.base.guidance_interval or 'off'}.")
        return
    r.changes["guidance_interval"] = (lo, hi)


def _read_clip_skip(r: _Reader) -> None:
    found = r.params.get("clip skip")
    if found is not None and found[1].strip().startswith("-"):  # ComfyUI's CLIPSetLastLayer -2 is A1111's 2
        r.params["clip skip"] = (found[0], found[1].strip()[1:])
    r.number(("clip skip",), "clip_skip", 1, MAX_CLIP_SKIP, whole=True)


def _read_controlnets(r: _Reader, settings_line: bool) -> None:
    """sd-webui-controlnet's units (written only when on: a settings line without them had none)."""
    units, notices, used = read_units(r.params)
    r.used |= used
    for notice in notices:
        r.note("controlnets", notice)
    if units or settings_line:
        r.changes["controlnets"] = units


_HASH_RE = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$")


def _read_refiner(r: _Reader) -> None:
    """AUTOMATIC1111's "Refiner: sd_xl_refiner_1.0 [7440042bbd]": the name (its hash dropped) and the switch."""
    found = r.raw("refiner")
    if found is not None:
        name = found[1].strip()
        name = _HASH_RE.sub("", name) if len(name) <= 4 * MAX_VALUE_CHARS else name
        if name:
            r.changes["refiner"] = name
    r.number(("refiner switch at",), "refiner_switch", 0.01, 0.99)


def parse_parameters(text: str, base: GenerationRequest | None = None) -> ParsedParameters:
    """Parse parameters text into a request (fields not in the text keep ``base``'s values)."""
    base = base or GenerationRequest()
    if not isinstance(text, str):
        raise ParametersError(f"parameters must be text, not {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ParametersError(f"the parameters text is {len(text):,} characters; the studio reads at most "
                              f"{MAX_TEXT_CHARS:,}")
    # Lone surrogates (from a careless writer) cannot reach a text encoder or a file: they become U+FFFD.
    text = text.encode("utf-8", "replace").decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.strip("\n").split("\n")
    pairs = split_pairs(lines[-1]) if lines else []
    if len(pairs) < 3:  # as AUTOMATIC1111 decides: fewer than three pairs is a prompt line
        pairs = []
    else:
        lines.pop()
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith(NEGATIVE):
            in_negative = True
            line = line[len(NEGATIVE):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    params: dict[str, tuple[str, str]] = {}
    for key, value in pairs:
        params.setdefault(key.lower(), (key, value))
    r = _Reader(params, base)
    r.changes["prompt"] = "\n".join(prompt_lines).strip()
    r.changes["negative_prompt"] = "\n".join(negative_lines).strip()

    r.number(("steps",), "steps", 1, MAX_STEPS, whole=True)
    missing_sampler = _read_sampler(r)
    r.number(("cfg scale",), "cfg_scale", 0, MAX_CFG)
    _read_seed(r)
    _read_variation(r)
    _read_size(r)
    if not read_hires(r, bool(pairs)):  # with hires fix, "Denoising strength" is its second pass's
        r.number(("denoising strength",), "strength", 0, 1)
    r.number(("mask blur",), "mask_feather", 0, MAX_FEATHER)
    r.number(("cfg rescale phi",), "guidance_rescale", 0, 1)
    r.number(("classifier scale",), "classifier_scale", 0, MAX_CFG)
    r.number(("dynamic threshold",), "dynamic_threshold", 1e-6, 1)
    r.number(("eta ddim",), "eta", 0, 1)
    r.number(("repaint resample",), "resample", 0, MAX_RESAMPLE, whole=True)
    read_inpaint(r)
    r.number(("distilled cfg scale",), "distilled_cfg", 0, MAX_CFG)  # Forge's name for Flux's guidance input
    _read_clip_skip(r)
    _read_interval(r)
    _read_refiner(r)
    read_tiles(r)
    if pairs:
        _switch_off_absent(r)
    _read_controlnets(r, bool(pairs))
    if (model := r.raw("studio model")) is not None:
        r.changes["model"] = model[1]
    model_label = found[1] if (found := r.raw("model")) is not None else ""
    unknown = {written: value for low, (written, value) in params.items() if low not in r.used}
    given = frozenset(r.changes)
    return ParsedParameters(base.with_changes(**r.changes), model_label, unknown, tuple(r.notices), given,
                            missing_sampler)
