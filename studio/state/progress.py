"""Progress of a run: step n of N, iterations per second and time left."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    step: int  # steps done in this run, 1-based
    total: int  # steps this run will take
    its: float  # steps per second, 0 until measurable
    eta: float  # seconds left, 0 until measurable

    def text(self) -> str:
        if self.its <= 0:
            return f"Step {self.step} of {self.total}"
        return f"Step {self.step} of {self.total} · {self.its:.1f} it/s · {format_seconds(self.eta)} left"


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def measure(done: int, total: int, elapsed: float) -> Progress:
    """Progress after ``done`` of ``total`` steps took ``elapsed`` seconds."""
    its = done / elapsed if elapsed > 0 and done > 0 else 0.0
    eta = (total - done) / its if its > 0 else 0.0
    return Progress(done, total, its, eta)
