"""One queued X/Y/Z plot: which job fills which cell, what came back, and whether the grid can be made.

Qt-free bookkeeping for the window's plotter. Each cell is an ordinary job (its own run in the
timeline and history); this only collects their images. A failed cell stays blank in the grid; a
cancelled cell (or one dropped from the queue by a cancel) ends the plot without a grid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .jobs import Job
from .panel_values import PanelValues
from .xyz_plot import Cell, Plot, grid_parameters


@dataclass(frozen=True)
class GridEntry:
    """What the history gets for the grid: the first finished cell's settings, the plot's parameters."""

    values: PanelValues
    parameters: str
    model_label: str


class PlotRun:
    def __init__(self, plot: Plot, jobs: list[tuple[Job, Cell]]):
        self.plot = plot
        self._cell_of = {job.job_id: cell.index for job, cell in jobs}
        self._outstanding = set(self._cell_of)
        self.images: list[np.ndarray | None] = [None] * plot.cell_count
        self._settings: dict[int, tuple[PanelValues, str, str]] = {}
        self.failed = 0
        self.cancelled = False

    def owns(self, job_id: int) -> bool:
        return job_id in self._cell_of

    @property
    def done(self) -> bool:
        """Every cell has finished, failed or been cancelled."""
        return not self._outstanding

    @property
    def finished_count(self) -> int:
        return len(self._settings)

    def take_result(self, job_id: int, image: np.ndarray, values: PanelValues, parameters: str,
                    model_label: str) -> None:
        if job_id in self._outstanding:
            self._outstanding.discard(job_id)
            index = self._cell_of[job_id]
            self.images[index] = image
            self._settings[index] = (values, parameters, model_label)

    def take_failure(self, job_id: int, cancelled: bool) -> None:
        if job_id in self._outstanding:
            self._outstanding.discard(job_id)
            self.failed += not cancelled
            self.cancelled |= cancelled

    def drop_missing(self, queued_ids: Iterable[int]) -> None:
        """Cells neither queued nor running any more were dropped by a cancel: the plot is cancelled."""
        missing = self._outstanding - set(queued_ids)
        if missing:
            self._outstanding -= missing
            self.cancelled = True

    def grid_entry(self) -> GridEntry | None:
        """The grid's history settings; None when no cell finished (then there is nothing to show)."""
        if not self._settings:
            return None
        values, parameters, model_label = self._settings[min(self._settings)]
        return GridEntry(values, grid_parameters(parameters, self.plot), model_label)
