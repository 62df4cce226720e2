"""Runs X/Y/Z plots in the window: opens the dialog, queues one job per cell, adds the grid to history.

Each cell is an ordinary job, so it streams, lands in the timeline and history, and can be scrubbed
and branched like any run; Cancel drops the plot's waiting cells as it drops a batch. When the last
cell has settled, the labelled grid goes into history with the plot written in its parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from ..engine.sampler_names import SAMPLER_NAMES, SPACINGS
from ..io.plot_grid import compose_plot_grid
from ..state.history import HistoryEntry
from ..state.jobs import JobFailure, JobResult
from ..state.xyz_axes import AxisChoices
from ..state.xyz_plot import Plot, plot_jobs, read_plot_description
from ..state.xyz_run import PlotRun
from .xyz_dialog import XyzDialog

if TYPE_CHECKING:
    from .studio_controller import StudioController


class XyzPlotter(QObject):
    grid_added = Signal(object)  # the grid's HistoryEntry
    _history_failed = Signal(object)  # from the history writer thread

    def __init__(self, controller: StudioController):
        super().__init__(controller)
        self.controller = controller
        self.window = controller.window
        self.runs: list[PlotRun] = []
        self.rows: list[tuple[str, str]] = [("Steps", "")]  # the dialog reopens with the last plot's rows
        self.dialog: XyzDialog | None = None
        self._check = QTimer(self)
        self._check.setSingleShot(True)
        self._check.setInterval(0)
        self._check.timeout.connect(self._check_queue)
        controller.job_settled.connect(self._on_settled)
        # After the queue moves (a cancel drops waiting cells): checked once the settled job is taken in.
        controller.queue.changed.connect(self._check.start)
        self._history_failed.connect(lambda exc: self.window.banner.show_error(f"Could not save the grid: {exc}"))
        self.window.xyz_action.triggered.connect(self.open_dialog)
        self.window.panel.xyz_button.clicked.connect(self.open_dialog)
        self.window.history_view.settings_requested.connect(self._reuse_plot)

    def choices(self) -> AxisChoices:
        catalog = self.controller.catalog
        if catalog is None:  # the engine is still starting: its names are known, its models not yet
            return AxisChoices(tuple((s.name, s.label) for s in SAMPLER_NAMES), SPACINGS)
        return AxisChoices(catalog.samplers, catalog.spacings, tuple((m.key, m.label) for m in catalog.models))

    def open_dialog(self) -> XyzDialog:
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = XyzDialog(self.window.panel.values(), self.choices(), self.rows, self.window)
        self.dialog.run_requested.connect(self.run)
        self.dialog.finished.connect(self._keep_rows)
        self.dialog.open()
        return self.dialog

    def _reuse_plot(self, entry: HistoryEntry) -> None:
        """Reusing a grid's settings also puts its plot back into the dialog."""
        rows = read_plot_description(entry.parameters)
        if rows:
            self.rows = rows

    def _keep_rows(self) -> None:
        if self.dialog is not None:
            self.rows = self.dialog.rows()

    def run(self, plot: Plot) -> None:
        """Queue one job per cell, built from the panel and the canvas."""
        c = self.controller
        canvas = self.window.canvas
        jobs = plot_jobs(plot, self.window.panel.values(), canvas.image(), canvas.mask(), c.last_seed,
                         c.queue.next_id, canvas.control_image())
        self.runs.append(PlotRun(plot, jobs))
        self.window.panel.mark_field(None)
        c.enqueue([job for job, _ in jobs])
        self.window.statusBar().showMessage(f"X/Y/Z plot: {len(jobs)} images queued", 5000)

    def _on_settled(self, outcome: JobResult | JobFailure) -> None:
        for run in self.runs:
            if not run.owns(outcome.job_id):
                continue
            if isinstance(outcome, JobResult):
                run.take_result(outcome.job_id, outcome.image, outcome.values, outcome.parameters,
                                outcome.model_label)
            else:
                run.take_failure(outcome.job_id, outcome.cancelled)
        self._finish()

    def _check_queue(self) -> None:
        queue = self.controller.queue
        live = {job.job_id for job in queue.pending() + queue.running_jobs()}
        for run in self.runs:
            run.drop_missing(live)
        self._finish()

    def _finish(self) -> None:
        for run in [r for r in self.runs if r.done]:
            self.runs.remove(run)
            if run.cancelled:
                self.window.banner.show_notice(f"X/Y/Z plot cancelled after {run.finished_count} of "
                                               f"{run.plot.cell_count} images; no grid was made.")
                continue
            entry = run.grid_entry()
            if entry is None:
                self.window.banner.show_error("X/Y/Z plot: no image finished, so there is no grid.")
                continue
            plot = run.plot
            grid = compose_plot_grid(run.images, plot.shape, plot.labels("X"), plot.labels("Y"), plot.labels("Z"))
            added: HistoryEntry = self.controller.history.add(grid.image, entry.values, entry.parameters,
                                                              entry.model_label, self._history_failed.emit)
            message = f"X/Y/Z plot done: a {grid.image.shape[1]}x{grid.image.shape[0]} grid is in history"
            if run.failed:
                message += f" ({run.failed} failed cell(s) left blank)"
            self.window.statusBar().showMessage(message, 8000)
            self.grid_added.emit(added)
