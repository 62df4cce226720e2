"""Turn the panel and the canvas into jobs: which mode (text, refine, inpaint), which seeds, which images."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from .jobs import CANVAS_INPUT_MODELS, Job
from .panel_values import PanelValues, seeds_for_batch


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The canvas image at the request's size (Lanczos); unchanged when it already fits."""
    image = np.ascontiguousarray(image[..., :3])
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def fit_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    if mask.shape == (height, width):
        return mask.astype(np.float32)
    resized = Image.fromarray(mask.astype(np.float32), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 1)


def canvas_inputs(values: PanelValues, image: np.ndarray | None, mask: np.ndarray | None
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Init image and mask for the engine: a painted mask inpaints, strength below 1 refines, else text only
    (the canvas picture always goes to a model that reads it, such as the emoji colouriser)."""
    if image is None or (mask is None and values.strength >= 1.0 and values.model not in CANVAS_INPUT_MODELS):
        return None, None
    init = fit_image(image, values.width, values.height)
    return init, (fit_mask(mask, values.width, values.height) if mask is not None else None)


def control_inputs(values: PanelValues, control: np.ndarray | None) -> tuple[np.ndarray | None, ...]:
    """The control layer at the request's size for each ControlNet unit that is on (None for those off).

    One layer serves every unit. Nothing drawn gives no images: the engine then says which unit lacks one."""
    if control is None or not any(unit.enabled for unit in values.controlnets):
        return ()
    fitted = fit_image(control, values.width, values.height)
    return tuple(fitted if unit.enabled else None for unit in values.controlnets)


def build_jobs(values: PanelValues, image: np.ndarray | None, mask: np.ndarray | None, last_seed: int | None,
               next_id: Callable[[], int], control: np.ndarray | None = None) -> list[Job]:
    """One job per image of the batch, each with its own settled seed."""
    init, job_mask = canvas_inputs(values, image, mask)
    controls = control_inputs(values, control)
    seeds = seeds_for_batch(values, last_seed)
    return [Job(next_id(), values.with_changes(seed=seed, batch_count=1), init, job_mask, None, i, len(seeds),
                controls)
            for i, seed in enumerate(seeds)]


def build_branch(values: PanelValues, parent_values: PanelValues, run_id: int, step: int,
                 image: np.ndarray | None, mask: np.ndarray | None, job_id: int,
                 control: np.ndarray | None = None) -> Job:
    """Continue run ``run_id`` after ``step`` with the panel's settings; the parent's seed keeps its noise."""
    values = values.with_changes(seed=parent_values.seed, batch_count=1)
    init, job_mask = canvas_inputs(values, image, mask)
    return Job(job_id, values, init, job_mask, (run_id, step), control_images=control_inputs(values, control))
