"""What the command line asks of the window at start: an image to open, and the start-time probe.

``diffusion-studio picture.png`` (what a desktop's "Open with" runs, through the .desktop file's ``Exec=... %f``)
opens the picture as File -> Open does: onto the canvas, its generation parameters restored in the panel.

``DIFFUSION_STUDIO_EXIT_WHEN_SHOWN=1`` makes the studio print ``window shown`` and end the process the moment the
window is first exposed on screen: packaging/build_bundle.py times a bundle's start with it. Nothing is saved.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

from .file_actions import FileActions

EXIT_WHEN_SHOWN_ENV = "DIFFUSION_STUDIO_EXIT_WHEN_SHOWN"
SHOWN_MARKER = "window shown"


def image_argument(args: list[str]) -> str | None:
    """The file the command line names (the first argument that is not an option), if any.

    Qt has already taken its own options (``-platform``, ``-style``) out of ``QApplication.arguments()``."""
    return next((a for a in args if not a.startswith("-")), None)


def open_command_line_image(files: FileActions, args: list[str]) -> None:
    """Open the image the command line names; a missing or unreadable file is named in the banner."""
    path = image_argument(args)
    if path is not None:
        files.open_file(str(Path(path).expanduser()))


def _report_shown_and_exit() -> None:
    print(SHOWN_MARKER, flush=True)
    sys.stderr.flush()
    os._exit(0)  # at once: the probe measures the start, the engine thread may still be loading torch


class _ExitWhenExposed(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Expose and watched.isExposed():
            _report_shown_and_exit()
        return False


def exit_when_shown_if_asked(window: QWidget) -> None:
    """With DIFFUSION_STUDIO_EXIT_WHEN_SHOWN=1, end the process when the (already shown) window is exposed."""
    if os.environ.get(EXIT_WHEN_SHOWN_ENV) != "1":
        return
    handle = window.windowHandle()  # exists once show() has run
    if handle.isExposed():  # some platforms expose the window inside show()
        QTimer.singleShot(0, _report_shown_and_exit)
        return
    handle.installEventFilter(_ExitWhenExposed(handle))
