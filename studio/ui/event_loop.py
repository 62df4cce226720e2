"""Driving the real Qt event loop from scripts (benchmarks, screenshots) until something happens."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QTimer


def run_until(done: Callable[[], bool], timeout_s: float = 120.0) -> None:
    """Run the real event loop (not processEvents + sleep, which adds its own lateness) until done()."""
    loop = QEventLoop()
    check = QTimer()
    check.timeout.connect(lambda: loop.quit() if done() else None)
    check.start(20)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    check.stop()
