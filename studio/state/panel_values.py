"""The prompt panel's settings as a frozen dataclass, torch-free.

The engine's GenerationRequest lives behind torch imports, so the UI keeps its
own copy of the scalar fields; the engine thread turns them into a request.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

SEED_MODES = ("fixed", "random", "reuse")  # reuse: the seed of the last finished image
MAX_SEED = 2**31 - 1  # what the seed box (a 32-bit QSpinBox) offers; the engine takes up to 2**63 - 1
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
    clip_skip: int = 1  # Stable Diffusion 1.x/2.x only (AUTOMATIC1111's "Clip skip")
    seed: int = 1
    seed_mode: str = "random"
    width: int = 64  # the embedded model's size (its 32 px base plus the 2x super-resolution stage)
    height: int = 64
    strength: float = 1.0
    mask_feather: float = 4.0
    batch_count: int = 1

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
            "classifier_scale": self.classifier_scale, "clip_skip": self.clip_skip, "seed": self.seed,
            "width": self.width,
            "height": self.height, "strength": self.strength, "mask_feather": self.mask_feather,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["guidance_interval"] = list(self.guidance_interval) if self.guidance_interval else None
        return data

    @classmethod
    def from_json(cls, data: Any) -> PanelValues:
        """Rebuild from saved JSON, keeping defaults for anything missing or of the wrong type."""
        if not isinstance(data, dict):
            return cls()
        default = cls()
        changes: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value, want = data[f.name], getattr(default, f.name)
            if f.name == "guidance_interval":
                ok = value is None or (isinstance(value, list | tuple) and len(value) == 2
                                       and all(isinstance(v, int | float) for v in value))
                if ok:
                    changes[f.name] = tuple(float(v) for v in value) if value is not None else None
            elif isinstance(want, bool) or isinstance(value, bool):
                continue
            elif isinstance(want, float) and isinstance(value, int | float):
                changes[f.name] = float(value)
            elif isinstance(value, type(want)):
                changes[f.name] = value
        values = replace(default, **changes)
        if values.seed_mode not in SEED_MODES:
            values = replace(values, seed_mode=default.seed_mode)
        return values

    @classmethod
    def from_request_fields(cls, request: dict[str, Any], base: PanelValues | None = None) -> PanelValues:
        """Settings restored from parameters text: the request's fields over ``base``; the seed becomes fixed."""
        base = base or cls()
        names = {f.name for f in fields(cls)}
        changes = {k: v for k, v in request.items() if k in names}
        if "guidance_interval" in changes and changes["guidance_interval"] is not None:
            changes["guidance_interval"] = tuple(float(v) for v in changes["guidance_interval"])
        return replace(base, **changes, seed_mode="fixed")


def seeds_for_batch(values: PanelValues, last_seed: int | None, rng: random.Random | None = None) -> list[int]:
    """One seed per image of the batch: fixed and reused seeds count up, random ones are drawn."""
    count = max(1, values.batch_count)
    if values.seed_mode == "random":
        rng = rng or random.Random()
        return [rng.randint(0, MAX_SEED) for _ in range(count)]
    first = last_seed if values.seed_mode == "reuse" and last_seed is not None else values.seed
    return [(first + i) % (MAX_SEED + 1) for i in range(count)]
