"""The SDXL refiner's part of a run: which steps it takes, and the denoiser that hands them to it.

AUTOMATIC1111's "Refiner switch at" S decides by noise level, not by step count: a step
whose sigma is nearest to training timestep t runs on the refiner once
(999 - t) / 1000 >= S (modules/sd_samplers_common.py, apply_refiner, its default mode).
That is diffusers' ensemble of experts too (the base keeps timesteps >= round(1000 * (1 - S)),
denoising_end / denoising_start), and with 20 leading steps and S = 0.8 it is the last 4 steps.
Deciding by sigma makes a branch's steps agree with the run it came from whatever its
schedule: a step is the refiner's because of its noise level, not its index.

Both models share SDXL's latent space, so the sampler's state crosses over unchanged. Its
multistep memory (DPM++ 2M's previous x0 prediction) crosses too, as in AUTOMATIC1111,
where k-diffusion's loop never learns that the model changed; every network evaluation
of one step uses one model (AUTOMATIC1111 may switch between Heun's two evaluations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .denoisers import Cond, Denoiser
from .schedules import DiscreteSchedule


def refiner_takes_over(schedule: DiscreteSchedule, sigma: float, switch_at: float) -> bool:
    """Whether a step starting at ``sigma`` runs on the refiner (AUTOMATIC1111's rule, see the module doc)."""
    n = schedule.num_timesteps
    timestep = int(torch.argmin((schedule.sigmas - float(sigma)).abs()))
    return (n - 1 - timestep) / n >= switch_at


def refiner_steps(schedule: DiscreteSchedule, sigmas: torch.Tensor, switch_at: float) -> list[bool]:
    """For each step of ``sigmas`` (a step starts at sigmas[i]): whether the refiner runs it."""
    return [refiner_takes_over(schedule, float(s), switch_at) for s in sigmas[:-1]]


class ModelSwitch:
    """A denoiser that runs each step on the base or the refiner, each with its own guided denoiser and cond.

    ``base`` and ``refiner`` are (guided denoiser, cond, per-step conditioning or None) as the runner
    builds them for one model. ``on_refiner[j]`` says who runs lineage step j. The runner sets ``step``
    before each sampler step (as for prompt editing); ``prepare(name)`` is called whenever the model that
    runs the next step changes ("base" or "refiner"), to move weights where they are needed. The
    sampler's own ``cond`` argument is not used.
    """

    def __init__(self, base: tuple[Denoiser, Cond, object], refiner: tuple[Denoiser, Cond, object],
                 on_refiner: Sequence[bool], prepare: Callable[[str], None] | None = None):
        self.sides = {"base": base, "refiner": refiner}
        self.on_refiner = list(on_refiner)
        self.prepare = prepare
        self._step = 0
        self._active: str | None = None

    @property
    def step(self) -> int:
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        self._step = value
        name = self.side(value)
        conditioning = self.sides[name][2]
        if conditioning is not None:
            conditioning.step = value  # prompt editing within this model's part of the run
        if name != self._active:
            self._active = name
            if self.prepare is not None:
                self.prepare(name)

    def side(self, step: int) -> str:
        flags = self.on_refiner
        return "refiner" if flags and flags[min(max(step, 0), len(flags) - 1)] else "base"

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        denoise, own_cond, _ = self.sides[self.side(self._step)]
        return denoise(x, sigma, own_cond)
