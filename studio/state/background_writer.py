"""One background thread for file writes, so an fsync never stalls the UI thread.

Writes run in submission order; ``flush`` waits for all of them (at exit, and in tests).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class BackgroundWriter:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-writer")
        self._pending: list[Future] = []

    def submit(self, write: Callable[[], None], on_error: Callable[[BaseException], None] | None = None) -> Future:
        future = self._pool.submit(write)
        self._pending = [f for f in self._pending if not f.done()] + [future]

        def report(done: Future) -> None:
            exc = done.exception()
            if exc is not None:
                if on_error is not None:
                    on_error(exc)
                else:
                    traceback.print_exception(exc, file=sys.stderr)

        future.add_done_callback(report)
        return future

    def flush(self, timeout: float | None = 30.0) -> None:
        for future in list(self._pending):
            try:
                future.result(timeout)
            except Exception:  # already reported by the done callback
                pass
        self._pending = [f for f in self._pending if not f.done()]

    def close(self) -> None:
        """Finish the writes and end the thread (a window's writer lives as long as the window)."""
        self.flush(None)
        self._pool.shutdown(wait=True)
