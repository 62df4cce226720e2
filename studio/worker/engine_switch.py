"""The window's one engine handle: this computer's engine thread or a studio server, switched while it runs.

EngineSwitch has EngineClient's signals and methods and passes them to whichever engine is in use, so the
controller and the widgets that hold it never learn which. Switching stops the engine in use (its late signals
no longer reach the window) and starts the other; the window's document, timeline and history stay as they are.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..state.jobs import Job
from ..state.upscale_jobs import UpscaleJob
from .engine_client import STOP_WAIT_MS, EngineClient
from .engine_signals import ENGINE_SIGNALS, EngineSignals


class EngineSwitch(EngineSignals):
    connection = Signal(str)  # a server's: why it cannot be reached (retrying), "" once it answers again

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.local = EngineClient(self)  # made at once (no thread, no torch until started): tests reach its worker
        self.backend: QObject = self.local
        self._connect(self.local)
        self.server_address: tuple[str, str] | None = None  # (url, token) while a server is in use

    @property
    def worker(self):
        """This computer's engine worker (tests watch its signals on the engine thread)."""
        return self.local.worker

    @property
    def started(self) -> bool:
        return self.backend.started

    @property
    def parallel_jobs(self) -> int:
        """How many jobs the engine in use takes at once (a server: its replicas, each with the next one waiting)."""
        return max(1, int(self.backend.parallel_jobs))

    @property
    def remote(self) -> bool:
        return self.backend is not self.local

    def _connect(self, backend: QObject) -> None:
        for name in ENGINE_SIGNALS + (("connection",) if hasattr(backend, "connection") else ()):
            getattr(backend, name).connect(getattr(self, name))

    def _disconnect(self, backend: QObject) -> None:
        for name in ENGINE_SIGNALS + (("connection",) if hasattr(backend, "connection") else ()):
            getattr(backend, name).disconnect(getattr(self, name))

    # -- which engine --------------------------------------------------------------------------------
    def use_local(self) -> None:
        """This computer's engine from now on (started by the caller's next ``start``)."""
        self._switch(self.local)
        self.server_address = None

    def use_server(self, url: str, token: str = "") -> None:
        """A studio server from now on; ValueError (nothing changed) on an address that cannot work."""
        from .remote_client import RemoteEngineClient  # aiohttp and asyncio load only for a server

        remote = RemoteEngineClient(url, token, self)
        self._switch(remote)
        self.server_address = (url, token)

    def _switch(self, backend: QObject) -> None:
        if backend is self.backend:
            return
        old = self.backend
        self._disconnect(old)
        old.stop(STOP_WAIT_MS)
        if old is not self.local:
            old.deleteLater()
        self.backend = backend
        if backend is not self.local:
            self._connect(backend)
        elif old is not self.local:
            self._connect(self.local)

    # -- EngineClient's methods ----------------------------------------------------------------------
    def start(self, device: str = "auto", threads: int = 0, model_key: str = "",
              model_folders: tuple[str, ...] = (), model_parts: dict | None = None, gpu_memory: str = "auto") -> None:
        if self.backend is self.local:
            self.local.start(device, threads, model_key, model_folders, model_parts, gpu_memory)
        else:  # a server places its models in its own GPU's memory
            self.backend.start(device, threads, model_key, model_folders, model_parts)

    def set_model_parts(self, model_parts: dict) -> None:
        self.backend.set_model_parts(model_parts)

    def set_gpu_memory(self, mode: str) -> None:
        """Settings → GPU memory, for this computer's engine (a server's is its own)."""
        self.local.set_gpu_memory(mode)

    def rescan(self, model_folders: tuple[str, ...]) -> None:
        self.backend.rescan(model_folders)

    def list_adapters(self) -> None:
        self.backend.list_adapters()

    def preload(self, model_key: str) -> None:
        self.backend.preload(model_key)

    def submit(self, job: Job) -> None:
        self.backend.submit(job)

    def upscale(self, job: UpscaleJob) -> None:
        self.backend.upscale(job)

    def cancel(self, job_id: int | None = None) -> None:
        self.backend.cancel(job_id)

    def describe(self, model_key: str, prompt: str) -> int:
        return self.backend.describe(model_key, prompt)

    def stop(self, wait_ms: int = STOP_WAIT_MS) -> None:
        self.backend.stop(wait_ms)
