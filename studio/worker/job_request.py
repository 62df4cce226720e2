"""A Job as the engine's GenerationRequest (torch-free): the engine thread and a studio server get the same one."""

from __future__ import annotations

from ..engine.request import ControlUnit, GenerationRequest
from ..state.jobs import Job


def control_units(job: Job) -> tuple[ControlUnit, ...]:
    """The request's ControlNet units: the panel's units that are on, each with its control image from the job
    (the canvas's control layer; a unit without one is refused by the request's checks, naming the unit)."""
    images = job.control_images
    return tuple(ControlUnit(unit.model, images[i] if i < len(images) else None, unit.preprocessor, unit.weight,
                             unit.start, unit.end)
                 for i, unit in enumerate(job.values.controlnets) if unit.enabled)


def request_for_job(job: Job, model_key: str) -> GenerationRequest:
    """The request ``job`` makes of ``model_key`` (the job's model, or the default it settled on)."""
    fields = job.values.request_fields() | {"model": model_key}
    return GenerationRequest(**fields, init_image=job.init_image, mask=job.mask, controlnets=control_units(job))
