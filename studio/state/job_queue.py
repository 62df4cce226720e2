"""The queue of generation jobs: pending ones wait while the engine runs one at a time."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QObject, Signal

from .jobs import Job


class JobQueue(QObject):
    """Pending jobs in order, and the one the engine is running; ``changed`` fires on any move."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pending: deque[Job] = deque()
        self._running: Job | None = None
        self._next_id = 1

    def next_id(self) -> int:
        job_id = self._next_id
        self._next_id += 1
        return job_id

    @property
    def running(self) -> Job | None:
        return self._running

    def pending(self) -> list[Job]:
        return list(self._pending)

    def __len__(self) -> int:
        return len(self._pending) + (self._running is not None)

    def add(self, jobs: list[Job]) -> None:
        self._pending.extend(jobs)
        self.changed.emit()

    def take_next(self) -> Job | None:
        """Mark the next pending job running and return it; None while one runs or nothing waits."""
        if self._running is not None or not self._pending:
            return None
        self._running = self._pending.popleft()
        self.changed.emit()
        return self._running

    def finish(self, job_id: int) -> None:
        if self._running is not None and self._running.job_id == job_id:
            self._running = None
            self.changed.emit()

    def remove_pending(self, job_id: int) -> None:
        self._pending = deque(j for j in self._pending if j.job_id != job_id)
        self.changed.emit()

    def clear_pending(self) -> None:
        self._pending.clear()
        self.changed.emit()
