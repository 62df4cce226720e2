"""The UI's handle on the engine thread: starts it, sends it jobs, cancels, and stops it on exit.

EngineClient is the engine's one face on the UI thread. The worker's signals are emitted on the engine
thread; the client re-emits each of them from a slot of its own, so whatever the UI connects to the
client (bound methods and lambdas alike) runs on the UI thread. UI code never connects to the worker.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal

from ..state.jobs import Job
from ..state.upscale_jobs import UpscaleJob
from .engine_signals import ENGINE_SIGNALS, EngineSignals
from .engine_worker import EngineWorker

STOP_WAIT_MS = 10_000  # closing waits this long at most for the step under way (a large model's step)


class EngineClient(EngineSignals):
    """Lives on the UI thread. Its private signals cross to the worker queued; the worker's come back here."""


    _start = Signal(str, int, str, object)
    _rescan = Signal(object)
    _parts = Signal(object)
    _gpu_memory = Signal(str)
    _preload = Signal(str)
    _run = Signal(object)
    _describe = Signal(int, str, str)
    _list_adapters = Signal()
    _upscale = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("engine")
        self.worker = EngineWorker()
        self.worker.moveToThread(self.thread)
        self._start.connect(self.worker.start)
        self._preload.connect(self.worker.preload)
        self._rescan.connect(self.worker.rescan)
        self._parts.connect(self.worker.set_model_parts)
        self._gpu_memory.connect(self.worker.set_gpu_memory)
        self._run.connect(self.worker.run_job)
        self._describe.connect(self.worker.describe_prompt)
        self._list_adapters.connect(self.worker.list_adapters)
        self._upscale.connect(self.worker.run_upscale)
        # Signal to signal: the receiver is this object, which lives on the UI thread, so Qt queues each
        # re-emit to this thread and anything connected here (lambdas included) runs on the UI thread.
        for name in ENGINE_SIGNALS:
            getattr(self.worker, name).connect(getattr(self, name))
        self._next_token = 1
        self.started = False

    @property
    def parallel_jobs(self) -> int:
        """Jobs this engine takes at once: one (the engine thread runs them in turn)."""
        return 1

    # -- requests ------------------------------------------------------------------------------------
    def start(self, device: str = "auto", threads: int = 0, model_key: str = "",
              model_folders: tuple[str, ...] = (), model_parts: dict | None = None, gpu_memory: str = "auto") -> None:
        self.thread.start()
        self.started = True
        if model_parts:
            self._parts.emit(dict(model_parts))  # queued before the start: the first load uses them
        self._gpu_memory.emit(gpu_memory)  # likewise
        self._start.emit(device, threads, model_key, tuple(model_folders))

    def set_model_parts(self, model_parts: dict) -> None:
        """The encoder / VAE files picked per model key (state/model_parts.py); a model whose own changed reloads
        when next preloaded or used."""
        self._parts.emit(dict(model_parts))

    def set_gpu_memory(self, mode: str) -> None:
        """Settings → GPU memory (engine/memory_modes.py): where a model's parts live; the loaded model's move
        when it is next preloaded or used."""
        self._gpu_memory.emit(mode)

    def rescan(self, model_folders: tuple[str, ...]) -> None:
        """List models again with these checkpoint folders; the answer comes back on ``ready``."""
        self._rescan.emit(tuple(model_folders))

    def list_adapters(self) -> None:
        """List the LoRA, embedding and ControlNet folders again; a changed list comes back on ``adapters_listed``."""
        self._list_adapters.emit()

    def preload(self, model_key: str) -> None:
        self._preload.emit(model_key)

    def submit(self, job: Job) -> None:
        self._run.emit(job)

    def upscale(self, job: UpscaleJob) -> None:
        """Upscale an image on the engine thread; progress, the result or a failure come back on upscale_*."""
        self._upscale.emit(job)

    def cancel(self, job_id: int | None = None) -> None:
        """Stop the running job (or ``job_id``) before its next step; returns at once."""
        self.worker.cancel(job_id)

    def describe(self, model_key: str, prompt: str) -> int:
        """Ask what the loaded model makes of a prompt; the answer comes back on ``described``."""
        token = self._next_token
        self._next_token += 1
        self._describe.emit(token, model_key, prompt)
        return token

    def stop(self, wait_ms: int = STOP_WAIT_MS) -> None:
        """Cancel, and end the engine thread once its slot under way returns, waiting up to ``wait_ms``.

        A QThread destroyed while it runs aborts the process, so a caller that keeps the process going
        waits long enough for a step or a model load to end; one that ends the process next need not."""
        if self.started:
            self.worker.cancel()
            self.thread.quit()
            self.thread.wait(wait_ms)
            self.started = False
