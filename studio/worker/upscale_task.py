"""An upscale job on the engine thread: the upscaler found in the session's folders, progress per tile, cancel."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from ..engine.devices import is_out_of_memory
from ..engine.models.errors import ModelLoadError
from ..engine.models.sd.adapter_files import AdapterLibrary
from ..engine.request import RequestError
from ..engine.upscalers import upscale_image, upscaler_label
from ..state.jobs import JobFailure
from ..state.upscale_jobs import UpscaleJob, UpscaleProgress, UpscaleResult


class UpscaleCancelled(Exception):
    def __init__(self, done: int, total: int):
        super().__init__(f"cancelled after tile {done} of {total}")
        self.done, self.total = done, total


def run_upscale(job: UpscaleJob, library: AdapterLibrary, device: str,
                on_progress: Callable[[UpscaleProgress], None], should_cancel: Callable[[], bool]) -> UpscaleResult:
    """Upscale ``job.image``; a cancel is noticed after each tile (raises UpscaleCancelled)."""
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if should_cancel():
            raise UpscaleCancelled(done, total)
        on_progress(UpscaleProgress(job.job_id, done, total))

    image = upscale_image(job.image, job.scale, job.upscaler, library=library, tile=job.tile, device=device,
                          on_progress=progress)
    elapsed = time.perf_counter() - started
    return UpscaleResult(job.job_id, image, upscaler_label(job.upscaler, library), job.scale, elapsed)


def describe_upscale_failure(job_id: int, exc: BaseException) -> JobFailure:
    """What the window says when an upscale did not finish."""
    if isinstance(exc, UpscaleCancelled):
        return JobFailure(job_id, f"Upscale cancelled after tile {exc.done} of {exc.total}.", cancelled=True)
    if isinstance(exc, RequestError):
        return JobFailure(job_id, f"Cannot upscale — {exc}", field=exc.field)
    if isinstance(exc, ModelLoadError):
        return JobFailure(job_id, f"Could not use the upscaler — {exc}", field="upscaler")
    if is_out_of_memory(exc):
        return JobFailure(job_id, "Out of memory while upscaling: choose a smaller factor, or Lanczos.")
    traceback.print_exception(exc, file=sys.stderr)
    return JobFailure(job_id, f"The upscale failed: {type(exc).__name__}: {exc}")
