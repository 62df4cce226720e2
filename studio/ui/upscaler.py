"""Upscales in the window: Image → Upscale… on the canvas image, Upscale… on a history image.

The dialog picks the upscaler and the factor; the work runs on the engine thread (after any generation
under way), its tiles reported to the dialog's progress bar. The result becomes a new history entry and
the canvas image, its parameters those of the source plus A1111's ``Postprocess upscale by`` and
``Postprocess upscaler``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction

from ..io.postprocessing import upscale_text, with_upscale
from ..state.history import HistoryEntry
from ..state.jobs import JobFailure
from ..state.panel_values import PanelValues
from ..state.upscale_jobs import DEFAULT_TILE, LANCZOS, UpscaleJob, UpscaleProgress, UpscaleResult
from .upscale_dialog import LANCZOS_LABEL, UpscaleDialog

if TYPE_CHECKING:
    from .studio_controller import StudioController


@dataclass(frozen=True)
class UpscaleSource:
    """What is being upscaled, and what its history entry will carry."""

    label: str  # "canvas image" / "history image"
    image: np.ndarray
    values: PanelValues
    parameters: str
    model_label: str


class Upscaler(QObject):
    upscaled = Signal(object)  # the new HistoryEntry

    def __init__(self, controller: StudioController):
        super().__init__(controller)
        self.controller = controller
        self.window = controller.window
        self.dialog: UpscaleDialog | None = None
        self.source: UpscaleSource | None = None
        self.job_id: int | None = None
        self.last_choice, self.last_scale = LANCZOS_LABEL, 4.0
        self.tile = DEFAULT_TILE
        engine = controller.engine
        engine.upscale_progress.connect(self._on_progress)
        engine.upscale_finished.connect(self._on_finished)
        engine.upscale_failed.connect(self._on_failed)
        self.window.panel.adapters_changed.connect(self._refresh_names)
        self.window.upscale_action.triggered.connect(self.upscale_canvas)
        history = self.window.history_view
        self.history_action = QAction("Upscale…", history.list)
        self.history_action.setStatusTip("Make this image larger: a new history entry")
        self.history_action.triggered.connect(self._upscale_selected)
        for text, signal in (("Open", history.open_requested), ("Reuse settings", history.settings_requested)):
            action = QAction(text, history.list)
            action.triggered.connect(lambda _=False, s=signal: self._emit_selected(s))
            history.list.addAction(action)
        history.list.addAction(self.history_action)
        history.list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def names(self) -> list[str]:
        """The upscaler files the engine listed (Lanczos is always offered besides)."""
        return [choice.name for choice in self.window.panel.adapters.upscalers]

    # -- opening -------------------------------------------------------------------------------------
    def upscale_canvas(self) -> UpscaleDialog:
        panel = self.window.panel
        source = UpscaleSource("canvas image", self.window.canvas.image(), panel.values(),
                               self.controller.files.document_parameters or "", "")
        return self.open_dialog(source)

    def upscale_entry(self, entry: HistoryEntry) -> UpscaleDialog | None:
        try:
            image = entry.load_image()
        except ValueError as exc:
            self.window.banner.show_error(str(exc))
            return None
        return self.open_dialog(UpscaleSource("history image", image, entry.values, entry.parameters,
                                              entry.model_label))

    def _upscale_selected(self) -> None:
        entry = self.window.history_view.selected()
        if entry is None:
            self.window.statusBar().showMessage("Select a history image to upscale", 4000)
            return
        self.upscale_entry(entry)

    def _emit_selected(self, signal) -> None:  # noqa: ANN001 (a bound Qt signal)
        entry = self.window.history_view.selected()
        if entry is not None:
            signal.emit(entry)

    def open_dialog(self, source: UpscaleSource) -> UpscaleDialog:
        if self.dialog is not None and self.dialog.running:
            self.dialog.raise_()  # one upscale at a time
            return self.dialog
        if self.dialog is not None:
            self.dialog.close()
        height, width = source.image.shape[:2]
        self.source = source
        self.dialog = UpscaleDialog(source.label, width, height, self.names(), self.last_choice, self.last_scale,
                                    self.window)
        self.dialog.upscale_requested.connect(self.run)
        self.dialog.cancel_requested.connect(self.cancel)
        self.dialog.open()
        if self.controller.engine.started:
            self.controller.engine.list_adapters()  # files copied in since the last look show up
        return self.dialog

    def _refresh_names(self) -> None:
        if self.dialog is not None and not self.dialog.running:
            self.dialog.set_upscalers(self.names())

    # -- running -------------------------------------------------------------------------------------
    def run(self, upscaler: str, scale: float) -> None:
        if self.source is None or self.dialog is None:
            return
        self.last_choice, self.last_scale = upscaler, scale
        self.job_id = self.controller.queue.next_id()
        name = LANCZOS if upscaler == LANCZOS_LABEL else upscaler
        self.dialog.start()
        self.controller.engine.upscale(UpscaleJob(self.job_id, self.source.image, name, scale, self.tile))

    def cancel(self) -> None:
        if self.job_id is not None:
            self.controller.engine.cancel(self.job_id)

    def _on_progress(self, progress: UpscaleProgress) -> None:
        if progress.job_id == self.job_id and self.dialog is not None:
            self.dialog.show_progress(progress.done, progress.total)

    def _on_finished(self, result: UpscaleResult) -> None:
        if result.job_id != self.job_id or self.source is None:
            return
        self.job_id = None
        source = self.source
        parameters = with_upscale(source.parameters, upscale_text(result.label, result.scale))
        entry = self.controller.history.add(result.image, source.values, parameters, source.model_label,
                                            self.controller._history_failed.emit)
        self.window.canvas.set_image(result.image)
        self.controller.files.document_parameters = parameters
        height, width = result.image.shape[:2]
        self.window.statusBar().showMessage(f"Upscaled to {width}x{height} with {result.label} in "
                                            f"{result.elapsed:.1f} s", 8000)
        if self.dialog is not None:
            self.dialog.running = False
            self.dialog.accept()
            self.dialog = None
        self.upscaled.emit(entry)

    def _on_failed(self, failure: JobFailure) -> None:
        if failure.job_id != self.job_id:
            return
        self.job_id = None
        if self.dialog is not None:
            self.dialog.stop(failure.message)
        else:
            self.window.banner.show_error(failure.message)
