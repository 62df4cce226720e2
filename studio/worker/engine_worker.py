"""The QObject that lives on the engine thread; its slots run there, its signals reach the UI queued.

torch is imported inside ``start`` — on this thread — so the window never waits for it.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

from PySide6.QtCore import Slot

from ..state.jobs import Job, JobFailure
from ..state.upscale_jobs import UpscaleJob
from .engine_signals import EngineSignals

ENGINE_NICENESS = 5  # the engine thread yields the CPU to the UI thread when both want it
GIL_SWITCH_INTERVAL_S = 0.0005  # Python's default 5 ms lets a busy engine thread hold the UI thread that long


def _yield_to_the_ui() -> None:
    """Make the engine thread (this one) polite: a lower CPU priority and a shorter GIL hold."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:  # Linux: a thread id lowers just this thread (and the torch threads it starts)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ENGINE_NICENESS)
    except (AttributeError, OSError):
        pass


class EngineWorker(EngineSignals):

    def __init__(self) -> None:
        super().__init__()
        self._session = None
        self._model_parts: dict = {}  # model key -> ModelParts, kept until the session exists
        self._gpu_memory = "auto"  # Settings → GPU memory, kept until the session exists
        # Set from the UI thread; read by the runner once per step.
        self._cancel_job = -1
        self._cancel_lock = threading.Lock()
        self._running_job = -1
        self._adapters = None  # the AdapterCatalog last reported

    # -- called from the UI thread directly (thread-safe) --------------------------------------------
    def cancel(self, job_id: int | None = None) -> None:
        with self._cancel_lock:
            self._cancel_job = self._running_job if job_id is None else job_id

    def _should_cancel(self) -> bool:
        with self._cancel_lock:
            return self._cancel_job == self._running_job

    # -- slots, run on the engine thread -------------------------------------------------------------
    @Slot(str, int, str, object)
    def start(self, device: str, threads: int, model_key: str, model_folders: tuple = ()) -> None:
        _yield_to_the_ui()
        self.status.emit("Loading torch…")
        try:
            from .engine_session import EngineSession

            self._session = EngineSession(device, threads, tuple(model_folders))
            self._session.model_parts = dict(self._model_parts)
            self._session.gpu_memory = self._gpu_memory
        except Exception as exc:  # a broken torch install must not take the window down
            traceback.print_exception(exc, file=sys.stderr)
            self.start_failed.emit(f"The engine could not start: {type(exc).__name__}: {exc}")
            return
        catalog = self._session.catalog()
        self._adapters = catalog.adapters
        self.ready.emit(catalog)
        self.preload(model_key)

    @Slot(object)
    def rescan(self, model_folders: tuple) -> None:
        """Look for checkpoints again (the user changed the model folders) and report the new list."""
        if self._session is None:
            return
        self._session.set_model_folders(tuple(model_folders))
        catalog = self._session.catalog()
        self._adapters = catalog.adapters
        self.ready.emit(catalog)

    @Slot(object)
    def set_model_parts(self, parts: dict) -> None:
        """The encoder / VAE files picked per model key; a model whose own changed reloads when next used."""
        self._model_parts = dict(parts)
        if self._session is not None:
            self._session.model_parts = dict(parts)

    @Slot(str)
    def set_gpu_memory(self, mode: str) -> None:
        """Settings → GPU memory (engine/memory_modes.py); the loaded model is placed anew when next used."""
        self._gpu_memory = mode
        if self._session is not None:
            self._session.gpu_memory = mode

    @Slot()
    def list_adapters(self) -> None:
        """List the adapter folders again (the picker was opened: files may have been added)."""
        if self._session is not None:
            self._report_adapters(rescan=True)

    def _report_adapters(self, rescan: bool = False) -> None:
        adapters = self._session.adapter_catalog(rescan)
        if adapters != self._adapters:
            self._adapters = adapters
            self.adapters_listed.emit(adapters)

    @Slot(str)
    def preload(self, model_key: str) -> None:
        if self._session is None:
            return
        from .engine_session import describe_failure

        self.status.emit("Loading model…")
        try:
            choice = self._session.ensure_model(model_key)
        except Exception as exc:
            self.failed.emit(describe_failure(-1, exc))
            self._report_model()
            return
        self.model_loaded.emit(choice)
        self._report_adapters()  # the folders beside the checkpoint just loaded
        self.status.emit(f"Ready · {choice.label} on {self._session.device}")

    @Slot(object)
    def run_job(self, job: Job) -> None:
        if self._session is None:
            self.failed.emit(JobFailure(job.job_id, "The engine is not running; see the message above."))
            return
        from .engine_session import describe_failure

        self._running_job = job.job_id
        try:
            if job.values.model and job.values.model != self._session.model_key:
                self.status.emit("Loading model…")
            else:
                self.status.emit(f"Generating · {job.label}")
            result = self._session.run(job, self.step.emit, self._should_cancel)
        except BaseException as exc:  # every engine error becomes a message; the thread stays alive
            self.failed.emit(describe_failure(job.job_id, exc))
        else:
            self.finished.emit(result)
        finally:
            self._running_job = -1
        self._report_model()

    @Slot(object)
    def run_upscale(self, job: UpscaleJob) -> None:
        """Upscale a finished image (queued behind any generation, on this thread); Cancel stops it after a tile."""
        if self._session is None:
            self.upscale_failed.emit(JobFailure(job.job_id, "The engine is not running; see the message above."))
            return
        from .upscale_task import describe_upscale_failure, run_upscale

        self._running_job = job.job_id
        self.status.emit("Upscaling…")
        try:
            result = run_upscale(job, self._session.adapter_library(), self._session.device,
                                 self.upscale_progress.emit, self._should_cancel)
        except BaseException as exc:  # every error becomes a message; the thread stays alive
            self.upscale_failed.emit(describe_upscale_failure(job.job_id, exc))
        else:
            self.upscale_finished.emit(result)
        finally:
            self._running_job = -1
        self._report_model()

    def _report_model(self) -> None:
        if self._session.model_key:
            choice = self._session.ensure_model(self._session.model_key)
            self.model_loaded.emit(choice)
            self._report_adapters()  # a job may have loaded another model
            self.status.emit(f"Ready · {choice.label} on {self._session.device}")
        else:
            self.status.emit("No model loaded — pick one in the panel")

    @Slot(int, str, str)
    def describe_prompt(self, token: int, model_key: str, prompt: str) -> None:
        try:
            text = self._session.describe_prompt(model_key, prompt) if self._session is not None else ""
        except Exception as exc:  # a hint must never cost the user a traceback
            text = ""
            traceback.print_exception(exc, file=sys.stderr)
        self.described.emit(token, text)
