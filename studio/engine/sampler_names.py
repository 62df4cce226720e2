"""The samplers and timestep spacings the studio offers, by name, and what other tools call them.

Torch-free on purpose: reading a PNG's parameters (on the UI thread, or in the
command line before a model loads) needs the names, not the samplers.
samplers.py pairs each name with its function.
"""

from __future__ import annotations

from dataclasses import dataclass

SPACINGS = ("leading", "trailing", "linspace", "karras")


@dataclass(frozen=True)
class SamplerName:
    name: str  # the key used in requests and on the command line
    label: str  # AUTOMATIC1111's name, written into PNG parameters
    aliases: tuple[str, ...]  # other tools' names: ComfyUI's sampler_name keys, A1111's old k_ aliases
    automatic: str  # the spacing A1111 1.9+ means by "Schedule type: Automatic" for this sampler


# A1111 1.9 gave DPM++ 2M a Karras default ("Automatic" for it reproduces the old "DPM++ 2M Karras");
# its other k-diffusion samplers default to "Uniform" (timesteps evenly spaced from the last to the first,
# the studio's linspace), its DDIM to the uniform leading discretisation.
SAMPLER_NAMES: tuple[SamplerName, ...] = (
    SamplerName("euler", "Euler", ("euler", "k_euler"), "linspace"),
    SamplerName("euler_a", "Euler a", ("euler_ancestral", "k_euler_a", "k_euler_ancestral"), "linspace"),
    SamplerName("heun", "Heun", ("heun", "k_heun"), "linspace"),
    SamplerName("dpmpp_2m", "DPM++ 2M", ("dpmpp_2m", "k_dpmpp_2m"), "karras"),
    SamplerName("ddim", "DDIM", ("ddim",), "leading"),
    SamplerName("ddpm", "DDPM", ("ddpm",), "leading"),
)

_BY_ANY_NAME = {key.lower(): s for s in SAMPLER_NAMES for key in (s.name, s.label, *s.aliases)}

# A1111 "Schedule type" labels and ComfyUI scheduler keys the studio has a spacing for. A1111's
# Uniform and ComfyUI's normal space timesteps evenly over the whole range (linspace); SGM Uniform and
# simple start at the last timestep and stop short of the first (trailing); ComfyUI's ddim_uniform and
# A1111's DDIM schedule step up from timestep 1 (leading). Exponential, Polyexponential, KL Optimal,
# Align Your Steps, Beta, Turbo, linear_quadratic and others have no counterpart here.
SCHEDULE_SPACINGS: dict[str, str] = {
    "karras": "karras",
    "uniform": "linspace", "normal": "linspace", "linspace": "linspace",
    "sgm uniform": "trailing", "sgm_uniform": "trailing", "sgmuniform": "trailing", "simple": "trailing",
    "trailing": "trailing",
    "ddim": "leading", "ddim_uniform": "leading", "leading": "leading",
}
# Schedules other tools write that the studio does not have, longest first: they are recognised as a
# suffix of a sampler name ("DPM++ 2M Exponential", "euler_kl_optimal") so the sampler can be named.
FOREIGN_SCHEDULES = ("align_your_steps", "align your steps", "karras exponential", "polyexponential",
                     "linear_quadratic", "exponential", "kl_optimal", "kl optimal", "turbo", "beta")


def find_sampler(name: str) -> SamplerName | None:
    """The sampler a key, an A1111 label or a ComfyUI key names (any case), or None."""
    return _BY_ANY_NAME.get(name.strip().lower())


def sampler_list() -> str:
    """The studio's samplers for a message: "euler (Euler), euler_a (Euler a), ..."."""
    return ", ".join(f"{s.name} ({s.label})" for s in SAMPLER_NAMES)
