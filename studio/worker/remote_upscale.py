"""An upscale the window sends to the studio server (``POST /v1/upscales``), reported on the engine's signals as
this computer's engine thread reports one (studio/worker/upscale_task.py): progress per tile, the result, or a
failure that says what to fix. The upscaler is one the server lists: its own files, by name."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass

from ..serve.client import ServerError, ServerUnreachable, StudioServer
from ..serve.fanout import TOO_MANY_RUNS
from ..state.jobs import JobFailure
from ..state.upscale_jobs import UpscaleJob, UpscaleProgress, UpscaleResult
from .engine_signals import EngineSignals


@dataclass
class RemoteUpscale:
    """An upscale sent: its id on the server once started, the tiles done so far, and whether it was cancelled."""

    job: UpscaleJob
    server_id: str = ""
    done: int = 0
    total: int = 0
    cancelled: bool = False

    def cancelled_failure(self) -> JobFailure:
        where = f" after tile {self.done} of {self.total}" if self.total else ""
        return JobFailure(self.job.job_id, f"Upscale cancelled{where}.", cancelled=True)


async def upscale_on_server(server: StudioServer, sent: RemoteUpscale, signals: EngineSignals, cancel_on_server,
                            busy_retry_s: float) -> None:
    """Run ``sent`` on ``server``; every ending is one of ``signals``' upscale_finished or upscale_failed.
    ``cancel_on_server(id)`` is called when a cancel asked for before the server named the upscale can be sent;
    an upscale the server's queue limit turns away (429) is sent again every ``busy_retry_s``, as the window's runs
    are."""
    job = sent.job
    while True:
        try:
            await _stream(server, sent, signals, cancel_on_server)
            return
        except ServerError as exc:
            if exc.status == TOO_MANY_RUNS and not sent.cancelled:  # runs of this window fill its queue there
                await asyncio.sleep(busy_retry_s)
                continue
            signals.upscale_failed.emit(sent.cancelled_failure() if sent.cancelled else _refused(job.job_id, exc))
            return
        except ServerUnreachable as exc:
            signals.upscale_failed.emit(sent.cancelled_failure() if sent.cancelled else JobFailure(
                job.job_id, f"The upscale stopped: {exc}. Upscale again once the server answers."))
            return


async def _stream(server: StudioServer, sent: RemoteUpscale, signals: EngineSignals, cancel_on_server) -> None:
    job = sent.job
    async with aclosing(server.upscale(job.image, job.upscaler, job.scale, job.tile)) as events:
        async for event in events:
            kind = event.get("type")
            if kind == "started":
                sent.server_id = str(event.get("run") or "")
                if sent.cancelled and sent.server_id:
                    cancel_on_server(sent.server_id)
            elif kind == "progress":
                sent.done, sent.total = int(event["done"]), int(event["total"])
                signals.upscale_progress.emit(UpscaleProgress(job.job_id, sent.done, sent.total))
            elif kind == "result":
                signals.upscale_finished.emit(UpscaleResult(job.job_id, event["image"],
                                                            str(event.get("label") or job.upscaler), job.scale,
                                                            float(event.get("elapsed") or 0.0)))
            elif kind == "cancelled":
                signals.upscale_failed.emit(sent.cancelled_failure())


def _refused(job_id: int, exc: ServerError) -> JobFailure:
    if exc.field or exc.status in (400, 413):
        return JobFailure(job_id, f"Cannot upscale — {exc}", field=exc.field)
    return JobFailure(job_id, f"The server could not upscale it: {exc}")
