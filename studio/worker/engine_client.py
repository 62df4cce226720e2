"""The UI's handle on the engine thread: starts it, sends it jobs, cancels, and stops it on exit."""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal

from ..state.jobs import Job
from .engine_worker import EngineWorker


class EngineClient(QObject):
    """Lives on the UI thread. Its private signals cross to the worker queued; the worker's signals come back."""

    _start = Signal(str, int, str, object)
    _rescan = Signal(object)
    _preload = Signal(str)
    _run = Signal(object)
    _parse = Signal(int, str)
    _describe = Signal(int, str, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.thread = QThread()
        self.thread.setObjectName("engine")
        self.worker = EngineWorker()
        self.worker.moveToThread(self.thread)
        self._start.connect(self.worker.start)
        self._preload.connect(self.worker.preload)
        self._rescan.connect(self.worker.rescan)
        self._run.connect(self.worker.run_job)
        self._parse.connect(self.worker.parse_parameters)
        self._describe.connect(self.worker.describe_prompt)
        self._next_token = 1
        self.started = False

    def start(self, device: str = "auto", threads: int = 0, model_key: str = "",
              model_folders: tuple[str, ...] = ()) -> None:
        self.thread.start()
        self.started = True
        self._start.emit(device, threads, model_key, tuple(model_folders))

    def rescan(self, model_folders: tuple[str, ...]) -> None:
        """List models again with these checkpoint folders; the answer comes back on worker.ready."""
        self._rescan.emit(tuple(model_folders))

    def preload(self, model_key: str) -> None:
        self._preload.emit(model_key)

    def submit(self, job: Job) -> None:
        self._run.emit(job)

    def cancel(self, job_id: int | None = None) -> None:
        """Stop the running job (or ``job_id``) before its next step; returns at once."""
        self.worker.cancel(job_id)

    def parse(self, text: str) -> int:
        """Ask the engine to parse parameters text; the answer comes back on worker.parsed with this token."""
        token = self._next_token
        self._next_token += 1
        self._parse.emit(token, text)
        return token

    def describe(self, model_key: str, prompt: str) -> int:
        """Ask what the loaded model makes of a prompt; the answer comes back on worker.described."""
        token = self._next_token
        self._next_token += 1
        self._describe.emit(token, model_key, prompt)
        return token

    def stop(self) -> None:
        if self.started:
            self.worker.cancel()
            self.thread.quit()
            self.thread.wait(10_000)
            self.started = False
