"""Start the studio: the window first, then the engine thread (torch and the model load there)."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads anywhere: see DESIGN.md

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from .platform_check import ensure_qt_can_start  # noqa: E402
from .state.files import remove_stale_temp_files  # noqa: E402
from .state.history import HistoryModel, HistoryStore  # noqa: E402
from .state.paths import StudioPaths  # noqa: E402
from .state.settings import load_settings  # noqa: E402
from .state.timeline import TimelineModel  # noqa: E402
from .ui.app_icon import app_icon  # noqa: E402
from .ui.main_window import MainWindow  # noqa: E402
from .ui.start_options import exit_when_shown_if_asked, open_command_line_image  # noqa: E402
from .ui.studio_controller import StudioController  # noqa: E402
from .ui.theme import apply_theme  # noqa: E402
from .worker.engine_switch import EngineSwitch  # noqa: E402

EXIT_ENGINE_WAIT_MS = 1000  # at exit the engine gets this long to end a step cleanly; then the process ends


@dataclass
class Studio:
    window: MainWindow
    controller: StudioController
    engine: EngineSwitch

    def start_engine(self) -> None:
        """This computer's engine thread, or the studio server the settings name."""
        self.controller.choose_engine()
        self.controller.start_engine()


def create_studio(paths: StudioPaths | None = None, app: QApplication | None = None) -> Studio:
    """Build the window and its controller, restore the last session; the engine is not started yet.

    Whatever lies in the studio's folders, the window opens: a file that cannot be read is set
    aside and named in the banner, what a kill left half-written is removed."""
    paths = paths or StudioPaths.default()
    remove_stale_temp_files(paths.config_dir)
    remove_stale_temp_files(paths.autosave_dir)
    loaded = load_settings(paths.settings_file)
    if app is not None:
        apply_theme(app, loaded.settings.theme)
    timeline = TimelineModel()
    store = HistoryStore(paths.history_dir)
    history_message = store.tidy()
    history = HistoryModel(store)
    window = MainWindow(timeline, history)
    engine = EngineSwitch(window)
    controller = StudioController(window, engine, timeline, paths, loaded.settings, window)
    autosave_message = controller.restore()
    messages = [m for m in (loaded.message, autosave_message, history_message) if m]
    if messages:
        window.banner.show_error("\n".join(messages))
    return Studio(window, controller, engine)


def main(argv: list[str] | None = None) -> int:
    ensure_qt_can_start()  # the diffusion-studio command comes here first (main.py checks before PySide6 loads)
    app = QApplication.instance() or QApplication(sys.argv if argv is None else argv)
    app.setApplicationName("Diffusion Studio")
    app.setOrganizationName("DiffusionStudio")
    app.setWindowIcon(app_icon())
    app.setDesktopFileName("diffusion-studio")  # Wayland matches the window to diffusion-studio.desktop (its icon)
    studio = create_studio(app=app)
    studio.controller.engine_stop_wait_ms = EXIT_ENGINE_WAIT_MS  # end_process follows the close
    open_command_line_image(studio.controller.files, app.arguments()[1:])  # "Open with" / diffusion-studio a.png
    studio.window.show()
    exit_when_shown_if_asked(studio.window)  # DIFFUSION_STUDIO_EXIT_WHEN_SHOWN=1: the bundle's start-time probe
    # After the first paint: torch loads on the engine thread while the window is already up.
    QTimer.singleShot(0, studio.start_engine)
    _close_on_ctrl_c(studio.window)
    code = app.exec()
    studio.controller.shutdown()  # done already when the window closed; not when the app quit another way
    end_process(code)
    return code  # not reached


def end_process(code: int) -> None:
    """End the process now, skipping Python's own teardown.

    Everything worth keeping is on disk by now: the settings and autosave are written, the history
    writer is flushed and the engine is stopped. What is left is Python freeing torch, transformers and
    the rest of the engine's modules one object at a time, which kept a closed window's process alive
    for 3-9 s (Py_FinalizeEx's garbage collection, seen in gdb).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _close_on_ctrl_c(window: MainWindow) -> None:
    """Ctrl+C in the terminal closes the window properly (settings and autosave are written)."""
    signal.signal(signal.SIGINT, lambda *_: window.close())
    # Python only runs signal handlers between bytecodes; an idle timer gives it the chance.
    ticker = QTimer(window)
    ticker.timeout.connect(lambda: None)
    ticker.start(250)


if __name__ == "__main__":
    sys.exit(main())
