"""The ingress's record of runs: who asked, which replica runs it, and its step states as they stream in.

The states arrive with the steps (run_export deltas), so whatever the client has seen it can branch from,
on any replica, even when the replica that ran it is busy or gone.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..engine.request import RequestError
from ..engine.run_export import append_states, export_history, import_history
from ..engine.runner import RunHistory


class UnknownRun(LookupError):
    """A run id the server does not know (HTTP 404)."""


class StepUnavailable(LookupError):
    """A step the server holds no state for (HTTP 409)."""


@dataclass(eq=False)
class RunRecord:
    run: str
    client: str
    replica: str = ""
    history: RunHistory | None = None
    stream: Any = None  # the replica's response generator while the run goes on
    cancelled: bool = False  # cancel was asked for (POST .../cancel)
    last_step: int = -1  # the last step event passed on to the client
    finished: bool = False
    branchable: bool = True  # False for an upscale: nothing to branch from, forgotten once it ends


KEEP_BYTES = 2**30  # step states kept for finished runs (1024 px SD runs keep about 15 MiB each)


class RunStore:
    """Runs by id: every running one, and the last ``keep`` finished ones while their states fit ``keep_bytes``."""

    def __init__(self, keep: int = 64, keep_bytes: int = KEEP_BYTES):
        self.keep, self.keep_bytes = keep, keep_bytes
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()

    def add(self, record: RunRecord) -> None:
        self._runs[record.run] = record
        self._trim()

    def get(self, run: str) -> RunRecord:
        record = self._runs.get(run)
        if record is None:
            raise UnknownRun(f"run {run[:100]!r} is not known to this server (it keeps the last {self.keep} runs)")
        return record

    def add_states(self, record: RunRecord, blob: bytes) -> None:
        """A replica's blob of the run's newest steps (with the run's header in the first one)."""
        if record.history is None:
            record.history = import_history(blob)
        else:
            append_states(record.history, blob)

    def finish(self, record: RunRecord) -> None:
        record.finished, record.stream = True, None
        if not record.branchable:  # kept no longer than it runs: it must not push out a run's states
            self._runs.pop(record.run, None)
            return
        self._runs.move_to_end(record.run)
        self._trim()

    def state(self, run: str, step: Any) -> bytes:
        """The blob for branching after ``step`` of ``run`` (UnknownRun, StepUnavailable, RequestError)."""
        record = self.get(run)
        if isinstance(step, bool) or not isinstance(step, int):
            raise RequestError("step", "must be a whole number")
        held = len(record.history.states) if record.history is not None else 0
        if not 0 <= step < held:
            steps = f"steps 0 to {held - 1}" if held else "no step yet"
            raise StepUnavailable(f"run {run} has {steps} here, not step {step}")
        return export_history(record.history, upto=step)

    def _trim(self) -> None:
        """Forget the oldest finished runs beyond ``keep``, then while all the states held pass ``keep_bytes``."""
        finished = [run for run, record in self._runs.items() if record.finished]
        for run in finished[: max(0, len(finished) - self.keep)]:
            del self._runs[run]
        held = sum(_state_bytes(record) for record in self._runs.values())
        for run in [run for run, record in self._runs.items() if record.finished]:
            if held <= self.keep_bytes:
                break
            held -= _state_bytes(self._runs.pop(run))


def _state_bytes(record: RunRecord) -> int:
    history = record.history
    if history is None:
        return 0
    return sum(s.x.nbytes for s in history.states) + history.noise.nbytes
