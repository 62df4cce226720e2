"""The queue of generation jobs: pending ones wait while the engine runs as many as it takes at once.

This computer's engine runs one job at a time; a studio server runs several (its replicas, each with the next job
already waiting), so ``capacity`` is set from the engine in use and that many jobs may be running together.
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QObject, Signal

from .jobs import Job


class JobQueue(QObject):
    """Pending jobs in order, and those the engine is running; ``changed`` fires on any move."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._pending: deque[Job] = deque()
        self._running: list[Job] = []  # oldest first
        self._next_id = 1
        self.capacity = 1  # how many jobs may run at once (the engine's; at least 1)

    def next_id(self) -> int:
        job_id = self._next_id
        self._next_id += 1
        return job_id

    @property
    def running(self) -> Job | None:
        """The oldest running job (the only one on this computer's engine); None when none runs."""
        return self._running[0] if self._running else None

    def running_jobs(self) -> list[Job]:
        return list(self._running)

    def running_job(self, job_id: int) -> Job | None:
        return next((job for job in self._running if job.job_id == job_id), None)

    def pending(self) -> list[Job]:
        return list(self._pending)

    def __len__(self) -> int:
        return len(self._pending) + len(self._running)

    def add(self, jobs: list[Job]) -> None:
        self._pending.extend(jobs)
        self.changed.emit()

    def take_next(self) -> Job | None:
        """Mark the next pending job running and return it; None while ``capacity`` run or nothing waits."""
        if len(self._running) >= max(1, self.capacity) or not self._pending:
            return None
        job = self._pending.popleft()
        self._running.append(job)
        self.changed.emit()
        return job

    def finish(self, job_id: int) -> None:
        job = self.running_job(job_id)
        if job is not None:
            self._running.remove(job)
            self.changed.emit()

    def remove_pending(self, job_id: int) -> None:
        self._pending = deque(j for j in self._pending if j.job_id != job_id)
        self.changed.emit()

    def clear_pending(self) -> None:
        self._pending.clear()
        self.changed.emit()
