"""The prompt panel's settings as a frozen dataclass, torch-free.

The engine's GenerationRequest lives behind torch imports, so the UI keeps its
own copy of the scalar fields; the engine thread turns them into a request.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .control_units import DEFAULT_UNITS, ControlSettings, adapt_units, units_to_json
from .panel_limits import MAX_PROMPT_CHARS, MAX_SEED, PANEL_LIMITS, SEED_MODES, Choices, Range

__all__ = ["MAX_SEED", "NON_KARRAS_SPACING", "SEED_MODES", "PanelValues", "seeds_for_batch"]

NON_KARRAS_SPACING = "leading"


@dataclass(frozen=True)
class PanelValues:
    prompt: str = "red heart"
    negative_prompt: str = ""
    model: str = ""  # empty: the engine's default model
    sampler: str = "dpmpp_2m"
    spacing: str = "leading"
    steps: int = 20
    cfg_scale: float = 3.0  # the embedded (default) model's recommended settings; a test keeps them in step
    guidance_rescale: float = 0.0
    guidance_interval: tuple[float, float] | None = None  # (sigma_lo, sigma_hi)
    classifier_scale: float = 0.0
    dynamic_threshold: float | None = None  # a percentile in (0, 1], e.g. 0.995; None is off
    clip_skip: int = 1  # Stable Diffusion 1.x/2.x only (AUTOMATIC1111's "Clip skip")
    distilled_cfg: float = 3.5  # Flux dev / Fill's guidance input (Forge's "Distilled CFG Scale")
    seed: int = 1
    seed_mode: str = "random"
    # AUTOMATIC1111's "Variation seed": the start noise moves toward this seed's by the strength (0 = off).
    variation_seed: int = 0
    variation_strength: float = 0.0
    width: int = 64  # the embedded model's size (its 32 px base plus the 2x super-resolution stage)
    height: int = 64
    strength: float = 1.0
    mask_feather: float = 4.0
    batch_count: int = 1
    # Inpainting (with a painted mask): A1111's "Inpaint area", "Only masked padding" and "Masked content".
    inpaint_area: str = "whole"
    inpaint_padding: int = 32
    masked_content: str = "original"
    refiner: str = ""  # an SDXL refiner's model key; empty is none
    refiner_switch: float = 0.8  # the fraction of the steps after which the refiner takes over
    # Hires fix (AUTOMATIC1111's): a second pass at hires_scale times the size; None is off.
    hires_scale: float | None = None
    hires_steps: int = 0  # 0: as many as Steps
    hires_upscaler: str = "Latent"  # a latent mode, Lanczos, or an upscaler model's name
    hires_denoise: float = 0.7
    tile_size: int = 0  # tiled diffusion (MultiDiffusion): the tile's side in pixels; 0 is off
    # ControlNet units; their control image is the canvas's control layer, joined on the engine thread.
    controlnets: tuple[ControlSettings, ...] = DEFAULT_UNITS

    @property
    def karras(self) -> bool:
        return self.spacing == "karras"

    def with_changes(self, **changes: Any) -> PanelValues:
        return replace(self, **changes)

    def request_fields(self) -> dict[str, Any]:
        """Keyword arguments for the engine's GenerationRequest (images are added by the engine thread)."""
        return {
            "prompt": self.prompt, "negative_prompt": self.negative_prompt, "model": self.model,
            "sampler": self.sampler, "spacing": self.spacing, "steps": self.steps, "cfg_scale": self.cfg_scale,
            "guidance_rescale": self.guidance_rescale, "guidance_interval": self.guidance_interval,
            "classifier_scale": self.classifier_scale,
            "dynamic_threshold": self.dynamic_threshold, "clip_skip": self.clip_skip, "seed": self.seed,
            "distilled_cfg": self.distilled_cfg,
            "variation_seed": self.variation_seed, "variation_strength": self.variation_strength,
            "width": self.width,
            "height": self.height, "strength": self.strength, "mask_feather": self.mask_feather,
            "inpaint_area": self.inpaint_area, "inpaint_padding": self.inpaint_padding,
            "masked_content": self.masked_content, "refiner": self.refiner, "refiner_switch": self.refiner_switch,
            "hires_scale": self.hires_scale or 0.0, "hires_steps": self.hires_steps,
            "hires_upscaler": self.hires_upscaler, "hires_denoise": self.hires_denoise, "tile_size": self.tile_size,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["guidance_interval"] = list(self.guidance_interval) if self.guidance_interval else None
        data["controlnets"] = units_to_json(self.controlnets)
        return data

    @classmethod
    def from_json(cls, data: Any) -> PanelValues:
        """Rebuild from saved JSON: a field that is missing or of the wrong type keeps its default,
        a number outside its widget's range is brought into it (see panel_limits.PANEL_LIMITS)."""
        return cls.from_json_with_notices(data)[0]

    @classmethod
    def from_json_with_notices(cls, data: Any) -> tuple[PanelValues, tuple[str, ...]]:
        """As ``from_json``, with one line per saved value that had to be adapted."""
        if not isinstance(data, dict):
            return cls(), ()
        return cls._adapted(data, cls())

    @classmethod
    def from_request_fields(cls, request: dict[str, Any], base: PanelValues | None = None) -> PanelValues:
        """Settings restored from parameters text: the request's fields over ``base``; the seed becomes fixed."""
        return cls.from_request_fields_with_notices(request, base)[0]

    @classmethod
    def from_request_fields_with_notices(cls, request: dict[str, Any], base: PanelValues | None = None
                                         ) -> tuple[PanelValues, tuple[str, ...]]:
        """As ``from_request_fields``, with one line per value that was adapted to fit the panel
        (a notice for the window: "Steps 99999999999 is more than 1000: set to 1000")."""
        values, notices = cls._adapted(request, base or cls())
        return values.with_changes(seed_mode="fixed"), notices

    @classmethod
    def _adapted(cls, data: dict[Any, Any], base: PanelValues) -> tuple[PanelValues, tuple[str, ...]]:
        changes: dict[str, Any] = {}
        notices: list[str] = []
        for f in fields(cls):
            if f.name not in data:
                continue
            value, notice = _adapt_field(f.name, data[f.name], getattr(base, f.name))
            changes[f.name] = value
            if notice:
                notices.append(notice)
        return replace(base, **changes), tuple(notices)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _clean_text(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); they cannot be written back as UTF-8 nor shown.
    return text.encode("utf-8", "replace").decode("utf-8")


# What the prompt box (a QPlainTextEdit) turns these into: a restored prompt equals the one the panel shows.
_PROMPT_BOX_KEEPS = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\xa0": " "})


def _as_prompt_box_keeps(text: str) -> str:
    return text.replace("\r\n", "\n").translate(_PROMPT_BOX_KEEPS)


def _adapt_field(name: str, value: Any, current: Any) -> tuple[Any, str | None]:
    """``value`` made fit for field ``name`` (with a notice when it was changed), or ``current`` kept."""
    limit = PANEL_LIMITS.get(name)
    if name == "guidance_interval":
        return _adapt_interval(value, current)
    if name == "controlnets":
        return adapt_units(value, current)
    if name == "dynamic_threshold" and value is None:
        return None, None  # off
    if name == "hires_scale" and (value is None or (not isinstance(value, bool) and value in (0, 1))):
        return None, None  # off (the engine's request writes 0 for off, and takes 1 as off too)
    if isinstance(current, str):
        if not isinstance(value, str):
            return current, f"{_label(name)} {_shown(value)} is not text: kept {current!r}."
        if isinstance(limit, Choices) and not limit.holds(value):
            return current, f"{_label(name)} {_shown(value)} is not one of {', '.join(limit.values)}: kept {current}."
        text = _clean_text(value)
        if name in ("prompt", "negative_prompt"):
            text = _as_prompt_box_keeps(text)
        if name in ("prompt", "negative_prompt") and len(text) > MAX_PROMPT_CHARS:
            return text[:MAX_PROMPT_CHARS], f"{_label(name)} of {len(text):,} characters: cut to " \
                                            f"{MAX_PROMPT_CHARS:,}."
        return text, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return current, f"{_label(name)} {_shown(value)} is not a number: kept {current}."
    if not isinstance(limit, Range):
        raise LookupError(f"panel_limits has no range for the numeric field {name}")
    if isinstance(value, float) and math.isnan(value):
        return current, f"{_label(name)} is not a number (NaN): kept {current}."
    bounded = limit.bound(value)
    if bounded == value:  # 20.0 for an int field or 3 for a float one is the same number
        return bounded, None
    return bounded, f"{_label(name)} {_shown(value)} {_why_changed(limit, value)}: set to {bounded}."


def _why_changed(limit: Range, value: int | float) -> str:
    if value > limit.hi:
        return f"is more than {limit.hi}"
    if value < limit.lo:
        return f"is less than {limit.lo}"
    if limit.multiple > 1:
        return f"is not a multiple of {limit.multiple}"
    return "is not a whole number"


def _adapt_interval(value: Any, current: tuple[float, float] | None) -> tuple[Any, str | None]:
    if value is None:
        return None, None
    ends = list(value) if isinstance(value, list | tuple) else None
    if (ends is None or len(ends) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool)
                       and not (isinstance(v, float) and math.isnan(v)) for v in ends)):
        return current, f"Guidance interval {_shown(value)} is not two numbers: kept {current}."
    limit = PANEL_LIMITS["guidance_interval"]
    if not isinstance(limit, Range):
        raise LookupError("panel_limits has no range for the guidance interval")
    lo, hi = sorted(float(limit.bound(v)) for v in ends)
    if (lo, hi) != (ends[0], ends[1]):  # compared exactly: float(10**400) would raise
        return (lo, hi), f"Guidance interval {_shown(value)} is outside {limit.lo}–{limit.hi} or reversed: " \
                         f"set to {lo:g}–{hi:g}."
    return (lo, hi), None


def seeds_for_batch(values: PanelValues, last_seed: int | None, rng: random.Random | None = None) -> list[int]:
    """One seed per image of the batch: fixed and reused seeds count up, random ones are drawn."""
    count = max(1, values.batch_count)
    if values.seed_mode == "random":
        rng = rng or random.Random()
        return [rng.randint(0, MAX_SEED) for _ in range(count)]
    first = last_seed if values.seed_mode == "reuse" and last_seed is not None else values.seed
    return [(first + i) % (MAX_SEED + 1) for i in range(count)]
