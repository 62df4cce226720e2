"""Generation parameters as text, in the format AUTOMATIC1111 writes into PNGs.

    a prompt, over one or more lines
    Negative prompt: a negative prompt
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model: m

A value holding a comma, colon or newline is written as a JSON string. The
reader also takes files from AUTOMATIC1111 and Forge (old "DPM++ 2M Karras"
sampler names, "Mask blur", "Denoising strength", unknown keys kept aside).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..engine.request import GenerationRequest
from ..engine.sampler_names import find_sampler

NEGATIVE = "Negative prompt:"


class ParametersError(ValueError):
    """Parameters text the studio cannot use; the message says why."""

# key: value pairs; a value is a JSON string or runs to the next comma.
PARAM_RE = re.compile(r'\s*([\w][\w \-/+]*?):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
SIZE_RE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n"') else text


def _number(value: float) -> str:
    return f"{value:g}"


def format_parameters(request: GenerationRequest, model_label: str = "") -> str:
    """The parameters text for a request, AUTOMATIC1111 style."""
    spec = find_sampler(request.sampler)
    if spec is None:
        raise ValueError(f"unknown sampler {request.sampler!r}")
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
    if request.init_image is not None:
        pairs.append(("Denoising strength", _number(request.strength)))
    if request.mask is not None:
        pairs.append(("Mask blur", _number(request.mask_feather)))
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
    unknown: dict[str, str] = field(default_factory=dict)  # keys this studio does not use


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def _split_params(line: str) -> dict[str, str]:
    return {m.group(1).strip(): _unquote(m.group(2)) for m in PARAM_RE.finditer(line) if m.group(1).strip()}


def _sampler_and_spacing(label: str, schedule_type: str | None) -> tuple[str, str | None]:
    name = label.strip()
    spacing = None
    if name.lower().endswith(" karras"):  # AUTOMATIC1111 before 1.9 folded the schedule into the name
        name, spacing = name[: -len(" karras")], "karras"
    if schedule_type:
        st = schedule_type.strip().lower()
        spacing = st if st in ("karras", "leading", "trailing", "linspace") else spacing
    found = find_sampler(name)
    return (found.name if found else name), spacing  # kept as written; validation names it if the user runs it


def parse_parameters(text: str, base: GenerationRequest | None = None) -> ParsedParameters:
    """Parse parameters text into a request (fields not in the text keep ``base``'s values)."""
    base = base or GenerationRequest()
    lines = text.strip("\n").split("\n")
    params: dict[str, str] = {}
    if lines and len(PARAM_RE.findall(lines[-1])) >= 3:
        params = _split_params(lines.pop())
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines:
        if line.startswith(NEGATIVE):
            in_negative = True
            line = line[len(NEGATIVE):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    changes: dict[str, object] = {"prompt": "\n".join(prompt_lines).strip(),
                                  "negative_prompt": "\n".join(negative_lines).strip()}
    used: set[str] = set()

    def take(key: str, convert):
        if key in params:
            try:
                value = convert(params[key])
            except (ValueError, TypeError):
                return None
            used.add(key)
            return value
        return None

    if (steps := take("Steps", int)) is not None:
        changes["steps"] = steps
    if "Sampler" in params:
        used.update({"Sampler", "Schedule type"})
        sampler, spacing = _sampler_and_spacing(params["Sampler"], params.get("Schedule type"))
        changes["sampler"] = sampler
        if spacing:
            changes["spacing"] = spacing
    for key, name, conv in (("CFG scale", "cfg_scale", float), ("Seed", "seed", int),
                            ("Denoising strength", "strength", float), ("Mask blur", "mask_feather", float),
                            ("CFG Rescale phi", "guidance_rescale", float),
                            ("Classifier scale", "classifier_scale", float),
                            ("Dynamic threshold", "dynamic_threshold", float), ("Eta DDIM", "eta", float),
                            ("RePaint resample", "resample", int), ("Clip skip", "clip_skip", int),
                            ("Studio model", "model", str)):
        if (value := take(key, conv)) is not None:
            changes[name] = value
    if (size := take("Size", lambda v: SIZE_RE.match(v).groups())) is not None:
        changes["width"], changes["height"] = int(size[0]), int(size[1])
    if (interval := take("Guidance interval", lambda v: tuple(float(p) for p in v.split("-")))) is not None:
        if len(interval) == 2:
            changes["guidance_interval"] = interval
    model_label = params.get("Model", "")
    used.add("Model")
    unknown = {k: v for k, v in params.items() if k not in used}
    return ParsedParameters(base.with_changes(**changes), model_label, unknown)

