"""An X/Y/Z plot: up to three axes, one run per cell, and the text that describes the grid.

Cells are numbered as AUTOMATIC1111 numbers them, ``ix + iy * nx + iz * nx * ny``; they run with X
changing fastest, except that an axis that is slow to change (Model) is moved to the outer loop so
each model loads once. The grid's parameters are the first cell's, followed by
``Script: X/Y/Z plot, X Type: ..., X Values: ...`` (and "Fixed X Values" with the seeds drawn for -1),
which ``read_plot_description`` reads back.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np

from .job_builder import canvas_inputs, control_inputs
from .jobs import Job
from .panel_values import PanelValues, seeds_for_batch
from .xyz_axes import MAX_CELLS, Axis, AxisChoices, AxisError, parse_axis

SCRIPT_NAME = "X/Y/Z plot"
LETTERS = ("X", "Y", "Z")
MAX_GRID_PIXELS = 64_000_000  # about 256 MB of RGB: the grid is composed in memory


@dataclass(frozen=True)
class Cell:
    index: int  # ix + iy * nx + iz * nx * ny
    position: tuple[int, int, int]  # (ix, iy, iz)


@dataclass(frozen=True)
class Plot:
    axes: tuple[Axis | None, Axis | None, Axis | None]  # X, Y, Z; None: that axis is unused

    @property
    def shape(self) -> tuple[int, int, int]:
        nx, ny, nz = (len(a) if a is not None else 1 for a in self.axes)
        return nx, ny, nz

    @property
    def cell_count(self) -> int:
        nx, ny, nz = self.shape
        return nx * ny * nz

    def labels(self, letter: str) -> tuple[str, ...]:
        axis = self.axes[LETTERS.index(letter)]
        return axis.labels if axis is not None else ()

    def cells(self) -> list[Cell]:
        """Every cell in run order: X fastest, then Y, then Z; a slow axis (Model) outermost."""
        nx, ny, nz = self.shape
        order = [2, 1, 0]  # outer to inner: Z, Y, X
        slow = [i for i in order if self.axes[i] is not None and self.axes[i].kind.slow]
        order = slow + [i for i in order if i not in slow]
        sizes = (nx, ny, nz)
        cells = []
        for combo in product(*(range(sizes[i]) for i in order)):
            pos = [0, 0, 0]
            for axis_index, value_index in zip(order, combo, strict=True):
                pos[axis_index] = value_index
            ix, iy, iz = pos
            cells.append(Cell(ix + iy * nx + iz * nx * ny, (ix, iy, iz)))
        return cells

    def cell_values(self, base: Any, cell: Cell) -> Any:
        """``base`` (PanelValues or a GenerationRequest) with each axis's value for ``cell``."""
        values = base
        for axis, index in zip(self.axes, cell.position, strict=True):
            if axis is not None:
                values = values.with_changes(**axis.changes(index, values.prompt, values.negative_prompt))
        return values

    def description(self) -> list[tuple[str, str]]:
        """The keys AUTOMATIC1111 adds to a plot's grid: Script, X Type, X Values (and Fixed X Values)."""
        pairs = [("Script", SCRIPT_NAME)]
        for axis in self.axes:
            if axis is None:
                continue
            pairs += [(f"{axis.letter} Type", axis.kind.name), (f"{axis.letter} Values", axis.text)]
            if axis.kind.name == "Seed":
                pairs.append((f"Fixed {axis.letter} Values", ", ".join(str(v) for v in axis.values)))
        return pairs


def build_plot(rows: list[tuple[str, str]], choices: AxisChoices = AxisChoices(),  # noqa: B008
               prompt: str = "", negative_prompt: str = "", size: tuple[int, int] = (64, 64),
               rng: random.Random | None = None) -> Plot:
    """A plot from up to three (type, values) rows, X first. Raises AxisError with a readable message.

    ``size`` is the panel's image size, for the grid-size limit when no axis changes it."""
    if len(rows) > 3:
        raise AxisError("Z", "a plot has at most three axes")
    axes: list[Axis | None] = [None, None, None]
    for i, (type_name, text) in enumerate(rows):
        axes[i] = parse_axis(LETTERS[i], type_name, text, choices, prompt, negative_prompt, rng)
    used = [a for a in axes if a is not None]
    if not used:
        raise AxisError("X", "pick a setting for at least one axis")
    for i, a in enumerate(used):
        for b in used[i + 1:]:
            if a.kind.name == b.kind.name:
                raise AxisError(b.letter, f"{b.kind.name} is already the {a.letter} axis")
    plot = Plot((axes[0], axes[1], axes[2]))
    if plot.cell_count > MAX_CELLS:
        nx, ny, nz = plot.shape
        raise AxisError(used[-1].letter, f"{nx} x {ny} x {nz} = {plot.cell_count} images; a plot holds at most "
                                         f"{MAX_CELLS}")
    sizes = next((a.values for a in used if a.kind.value_type == "size"), (size,))
    pixels = plot.cell_count * max(w * h for w, h in sizes)
    if pixels > MAX_GRID_PIXELS:
        raise AxisError(used[-1].letter, f"the grid would hold {pixels / 1e6:.0f} megapixels; the most is "
                                         f"{MAX_GRID_PIXELS / 1e6:.0f}: use fewer values or smaller images")
    return plot


def plot_jobs(plot: Plot, values: PanelValues, image: np.ndarray | None, mask: np.ndarray | None,
              last_seed: int | None, next_id: Callable[[], int], control: np.ndarray | None = None
              ) -> list[tuple[Job, Cell]]:
    """One job per cell in run order, each with the panel's settings and its cell's values.

    The panel's seed is settled once, so cells differ only in what the axes change (as in AUTOMATIC1111)."""
    seed = seeds_for_batch(values.with_changes(batch_count=1), last_seed)[0]
    base = values.with_changes(seed=seed, seed_mode="fixed", batch_count=1)
    jobs = []
    cells = plot.cells()
    for n, cell in enumerate(cells):
        cell_values = plot.cell_values(base, cell)
        init, job_mask = canvas_inputs(cell_values, image, mask)
        jobs.append((Job(next_id(), cell_values, init, job_mask, None, n, len(cells),
                         control_inputs(cell_values, control)), cell))
    return jobs


def _quote(value: str) -> str:
    # The parameters text's own rule: a value holding a comma, colon, quote or newline is a JSON string.
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ',:\n"') else value


def grid_parameters(cell_parameters: str, plot: Plot) -> str:
    """The grid's parameters text: a cell's parameters with the plot's description on the last line."""
    extra = ", ".join(f"{key}: {_quote(value)}" for key, value in plot.description())
    text = cell_parameters.rstrip("\n")
    return f"{text}, {extra}" if text else extra


_PLOT_KEY_RE = re.compile(r'(?:^|,)\s*(Script|[XYZ] Type|[XYZ] Values):\s*("(?:\\.|[^\\"])*"|[^,]*)')


def read_plot_description(parameters: str) -> list[tuple[str, str]] | None:
    """The (type, values) rows of the plot a grid's parameters describe; None when they describe none."""
    last = parameters.strip("\n").rsplit("\n", 1)[-1]
    found: dict[str, str] = {}
    for match in _PLOT_KEY_RE.finditer(last):
        raw = match.group(2).strip()
        if raw.startswith('"'):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raw = raw.strip('"')
        found[match.group(1)] = raw
    if found.get("Script") != SCRIPT_NAME:
        return None
    rows = [(found.get(f"{letter} Type", ""), found.get(f"{letter} Values", "")) for letter in LETTERS]
    while rows and not rows[-1][0]:
        rows.pop()
    return rows
