"""The toolbar's Preview: what the first ControlNet unit's preprocessor makes of the control layer.

The preprocessors are numpy (studio/engine/control_preprocess.py, torch-free), but not all cheap:
Canny takes about 0.3 s at 512 px and the XDoG scribble seconds. The map is therefore made on a
short-lived background thread and handed back through a queued signal; the window stays live, and
a map that arrives after the layer or the settings changed is dropped. The preview shows in place
of the layer, is made again when the preprocessor or the size changes, and ends when the layer is
drawn on (the toolbar unchecks Preview), or when Preview or control mode is switched off.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..engine.control_preprocess import control_map
from ..engine.request import RequestError
from ..state.panel_values import PanelValues
from .main_window import MainWindow

Key = tuple[str, int, int]  # (preprocessor, width, height) a map was made for


def previewed_preprocessor(values: PanelValues) -> str:
    """The preprocessor to preview: the first unit's that is on, else the first unit's."""
    on = [unit for unit in values.controlnets if unit.enabled]
    return (on or list(values.controlnets))[0].preprocessor


class ControlPreview(QObject):
    _made = Signal(int, object)  # (request number, the map or the RequestError), from the worker thread

    def __init__(self, window: MainWindow, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.button = window.canvas_toolbar.preview_button
        self._wanted: Key | None = None  # what the preview should show while Preview is on
        self._number = 0  # the latest request; older maps are dropped
        self._busy = False
        self._queued: tuple[np.ndarray, Key] | None = None  # asked for while a map was being made
        self._made.connect(self._arrived)
        self.button.toggled.connect(self._toggled)
        window.panel.values_changed.connect(self._follow_panel)

    def busy(self) -> bool:
        return self._busy

    def _toggled(self, on: bool) -> None:
        if on:
            self.request()
        else:
            self._wanted = None
            self._number += 1
            self.window.canvas.show_control_preview(None)

    def request(self) -> None:
        """Make the map for the layer as it is and the panel's settings; it shows when ready."""
        layer = self.window.canvas.control_image()
        if layer is None:
            self._stop("The control layer is empty: draw on it or load an image into it first.")
            return
        values = self.window.panel.values()
        self._wanted = (previewed_preprocessor(values), values.width, values.height)
        self._number += 1
        if self._busy:
            self._queued = (layer, self._wanted)
            return
        self._start(layer, self._wanted)

    def _start(self, layer: np.ndarray, key: Key) -> None:
        self._busy = True
        number = self._number
        self.window.statusBar().showMessage(f"Making the control map ({key[0]})…")

        def work() -> None:
            try:
                result: object = control_map(layer, *key)
            except RequestError as exc:  # e.g. a preprocessor that needs weights the studio lacks
                result = exc
            self._made.emit(number, result)

        threading.Thread(target=work, name="control-preview", daemon=True).start()

    def _arrived(self, number: int, result: object) -> None:
        self._busy = False
        if self._queued is not None:
            layer, key = self._queued
            self._queued = None
            self._start(layer, key)
            return
        if number != self._number or self._wanted is None or not self.button.isChecked():
            return  # asked for before a later change, or Preview was switched off meanwhile
        if isinstance(result, RequestError):
            self._stop(f"No preview: {result}")
            return
        self.window.canvas.show_control_preview(result)
        preprocessor, width, height = self._wanted
        self.window.statusBar().showMessage(f"Control map ({preprocessor}) at {width} × {height}", 4000)

    def _stop(self, message: str) -> None:
        self._wanted = None
        self.button.setChecked(False)
        self.window.banner.show_notice(message)

    def _follow_panel(self) -> None:
        if self._wanted is None:
            return
        values = self.window.panel.values()
        if (previewed_preprocessor(values), values.width, values.height) != self._wanted:
            self.request()
