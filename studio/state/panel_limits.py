"""What each prompt-panel field may hold: the one table the panel's widgets and every loader share.

A value read from settings.json, the autosave, a history entry or a PNG's parameters is
brought into these limits before it reaches a widget (a QSpinBox raises OverflowError on
an int beyond 32 bits, and a canvas cannot be made 0 or 100,000 pixels wide).

``PANEL_LIMITS`` maps a PanelValues field name to a ``Range`` (numbers) or ``Choices``
(strings); fields not in it (prompt, negative prompt, model, sampler, refiner) are free text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_SEED = 2**31 - 1  # what the seed box (a 32-bit QSpinBox) offers; the engine takes up to 2**63 - 1
SEED_MODES = ("fixed", "random", "reuse")  # reuse: the seed of the last finished image
# The engine's spacing names (studio/engine/schedules.py; not imported: studio/state stays torch-free).
SPACINGS = ("leading", "trailing", "linspace", "karras")
# A prompt box lays out a 200 KB prompt for seconds (a long word's wrapping is quadratic); text encoders
# read a few hundred tokens. Longer prompts are cut, with a notice, wherever they come from.
MAX_PROMPT_CHARS = 20_000
# The engine's inpainting choices (studio/engine/request.py; kept in step by tests/test_state_panel_values.py).
INPAINT_AREAS = ("whole", "masked")  # A1111's "Inpaint area": whole picture, only masked
MASKED_CONTENTS = ("original", "fill", "latent_noise", "latent_nothing")  # A1111's "Masked content"
MAX_INPAINT_PADDING = 1024
SIZE_MULTIPLE = 8  # every model the studio runs works in latents of 1/8 the pixel size (or on 8 px blocks)


@dataclass(frozen=True)
class Range:
    """Numbers from ``lo`` to ``hi``; an int range with ``multiple`` > 1 holds only multiples of it."""

    lo: int | float
    hi: int | float
    multiple: int = 1

    @property
    def is_int(self) -> bool:
        return isinstance(self.lo, int) and isinstance(self.hi, int)

    def bound(self, value: int | float) -> int | float:
        """``value`` brought inside the range (and to the nearest multiple); NaN raises ValueError."""
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("NaN is not a number any setting can take")
        # Compared before any conversion: float(10**400) and round(inf) raise OverflowError.
        if value >= self.hi:
            return self.hi
        if value <= self.lo:
            return self.lo
        if not self.is_int:
            return float(value)
        whole = round(value)
        if self.multiple > 1:
            whole = round(whole / self.multiple) * self.multiple
        return min(max(whole, int(self.lo)), int(self.hi))

    def holds(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.is_int:
            return isinstance(value, int) and self.lo <= value <= self.hi and value % self.multiple == 0
        # Compared as they are: math.isfinite(10**400) raises OverflowError.
        return not (isinstance(value, float) and not math.isfinite(value)) and self.lo <= value <= self.hi


@dataclass(frozen=True)
class Choices:
    values: tuple[str, ...]

    def holds(self, value: object) -> bool:
        return value in self.values


PANEL_LIMITS: dict[str, Range | Choices] = {
    "steps": Range(1, 1000),
    "cfg_scale": Range(0.0, 30.0),
    "guidance_rescale": Range(0.0, 1.0),
    "guidance_interval": Range(0.0, 1000.0),  # each end of the (sigma_lo, sigma_hi) pair
    "classifier_scale": Range(0.0, 100.0),
    "dynamic_threshold": Range(0.001, 1.0),  # a percentile; the engine takes (0, 1], None (off) is kept
    "clip_skip": Range(1, 12),
    "distilled_cfg": Range(0.0, 100.0),
    "seed": Range(0, MAX_SEED),
    "variation_seed": Range(0, MAX_SEED),
    "variation_strength": Range(0.0, 1.0),
    "width": Range(8, 2048, SIZE_MULTIPLE),
    "height": Range(8, 2048, SIZE_MULTIPLE),
    "strength": Range(0.0, 1.0),
    "mask_feather": Range(0.0, 64.0),
    "batch_count": Range(1, 64),
    "inpaint_padding": Range(0, MAX_INPAINT_PADDING),
    "hires_scale": Range(1.0, 4.0),  # hires fix's factor (engine/hires_settings.py); None (off) is kept
    "hires_steps": Range(0, 1000),  # 0: as many as Steps
    "hires_denoise": Range(0.0, 1.0),
    "tile_size": Range(0, 2048, 64),  # 0: off; the engine checks the model's multiple and the smallest tile
    "refiner_switch": Range(0.01, 0.99),  # the engine takes (0, 1); A1111's slider goes 0.01-1
    "spacing": Choices(SPACINGS),
    "seed_mode": Choices(SEED_MODES),
    "inpaint_area": Choices(INPAINT_AREAS),
    "masked_content": Choices(MASKED_CONTENTS),
}
