"""Where a remote run's CPU goes on this machine, process by process (bench_serve.py's (a)).

A step streamed from the server crosses the engine replica, the ingress (Gateway) and Ray Serve's HTTP proxy
before the client reads it; each takes CPU that, on a small machine, the run's own thread shares cores with.
This counts each role's CPU seconds over the remote runs, less what the same processes spend while idle (taken
over the local runs, when the server waits), per step. It reads the processes through psutil and finds them by
their Ray process titles, so it says nothing about a server on another machine or without psutil.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

ROLES = (  # (what a process title holds, the role it plays), first match wins
    (":Engine", "engine replica"),
    (":Gateway", "ingress"),
    ("ProxyActor", "HTTP proxy"),
    ("ServeController", "Serve controller"),
    ("raylet", "Ray's daemons"),
    ("gcs_server", "Ray's daemons"),
    ("ray::", "other Ray processes"),
    ("/ray/", "other Ray processes"),
)
CLIENT = "client (this process)"


def _role(command: str) -> str | None:
    return next((role for mark, role in ROLES if mark in command), None)


class CpuAccount:
    """CPU seconds by role over stretches of remote runs and of the server idling (``measure``)."""

    def __init__(self):
        self.processes: list[tuple[str, object]] = []
        self.busy: dict[str, float] = defaultdict(float)
        self.resting: dict[str, float] = defaultdict(float)
        self.run_thread = 0.0  # in each stretch of remote runs, the engine replicas' busiest thread: the run's own
        self.busy_s = self.resting_s = 0.0
        try:
            import psutil
        except ImportError:
            return
        me = os.getpid()
        for process in psutil.process_iter(["pid", "cmdline"]):
            role = CLIENT if process.info["pid"] == me else _role(" ".join(process.info["cmdline"] or []))
            if role is not None:
                self.processes.append((role, process))

    def _sample(self) -> tuple[float, dict[str, float], dict[tuple[int, int], float]]:
        """(now, CPU seconds by role, CPU seconds of each engine replica's threads by (pid, thread id))."""
        totals: dict[str, float] = defaultdict(float)
        threads: dict[tuple[int, int], float] = {}
        for role, process in self.processes:
            try:
                times = process.cpu_times()
                totals[role] += times.user + times.system
                if role == "engine replica":
                    threads.update({(process.pid, t.id): t.user_time + t.system_time for t in process.threads()})
            except Exception:  # noqa: BLE001 - a process that ended counts for nothing more
                continue
        return time.perf_counter(), totals, threads

    @contextmanager
    def measure(self, busy: bool) -> Iterator[None]:
        """One stretch: remote runs (``busy``), or the server idling while a local run goes on."""
        if not self.processes:
            yield
            return
        start = self._sample()
        yield
        end = self._sample()
        into = self.busy if busy else self.resting
        for role, seconds in end[1].items():
            into[role] += seconds - start[1].get(role, 0.0)
        if busy:
            self.busy_s += end[0] - start[0]
            self.run_thread += max((seconds - start[2].get(key, 0.0) for key, seconds in end[2].items()),
                                   default=0.0)
        else:
            self.resting_s += end[0] - start[0]

    def report(self, steps: int) -> str | None:
        """Milliseconds of CPU per step by role, beyond the run's own thread and beyond idling; None when no
        process of the server was found here."""
        if not self.processes or not steps or not self.resting_s:
            return None
        present = {role for role, _ in self.processes}
        parts = []
        for role in dict.fromkeys([role for _, role in ROLES] + [CLIENT]):
            if role not in present:
                continue
            seconds = self.busy.get(role, 0.0)
            if role != CLIENT:  # the client computes the local runs itself: its idle share cannot be taken there
                seconds -= self.resting.get(role, 0.0) / self.resting_s * self.busy_s
            if role == "engine replica":
                seconds -= self.run_thread
            parts.append((role, seconds / steps * 1000))
        listed = ", ".join(f"{role} {ms:.1f}" for role, ms in parts)
        return (f"CPU per step beside the run's own thread ({self.run_thread / steps * 1000:.1f} ms a step, its "
                f"whole run counted), less idling: {listed} (ms; {sum(ms for _, ms in parts):.1f} in all)")
