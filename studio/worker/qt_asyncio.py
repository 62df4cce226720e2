"""asyncio inside Qt's event loop (qasync), for the window's remote engine.

The loop is made the first time a studio server is used, not at start: a studio on this computer never pays for
asyncio. It is made "already running" (qasync's term): Qt's loop (QApplication.exec, a dialog's exec, pytest-qt's
waits) runs its callbacks, and asyncio, aiohttp included, sees it as this thread's running loop.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

_loop: asyncio.AbstractEventLoop | None = None


def qt_loop() -> asyncio.AbstractEventLoop:
    """This thread's running asyncio loop; a qasync loop over the QApplication when there is none yet."""
    global _loop
    running = asyncio._get_running_loop()
    if running is not None:
        return running
    if _loop is None or _loop.is_closed():
        import qasync
        from PySide6.QtWidgets import QApplication

        _loop = qasync.QEventLoop(QApplication.instance(), already_running=True)
    else:
        asyncio.events._set_running_loop(_loop)  # given back by release_loop(); qasync sets it the same way
    return _loop


def release_loop() -> None:
    """No running asyncio loop on this thread any more (its tasks wait until qt_loop() is asked for again):
    for code that runs asyncio.run() here later, such as a test after a window's."""
    if _loop is not None and asyncio._get_running_loop() is _loop:
        asyncio.events._set_running_loop(None)


def spawn(coroutine: Coroutine[Any, Any, Any], on_error: Callable[[BaseException], None] | None = None
          ) -> asyncio.Task:
    """Run ``coroutine`` on Qt's loop; an exception it lets out goes to ``on_error`` (else to stderr), never lost."""
    task = qt_loop().create_task(coroutine)

    def done(finished: asyncio.Task) -> None:
        if finished.cancelled():
            return
        exc = finished.exception()
        if exc is None:
            return
        if on_error is not None:
            on_error(exc)
        else:
            traceback.print_exception(exc, file=sys.stderr)

    task.add_done_callback(done)
    return task
