"""Every step of every run, as small previews, with the branches between runs.

A branch started from step k of a run shares that run's first k + 1 previews
(the same arrays, no copies), so each run's ``frames`` covers its whole lineage.
Memory is bounded: previews are shrunk to ``max_side`` and, past
``budget_bytes``, the oldest runs that nothing is showing are dropped. The
engine keeps the latents needed to branch; the UI keeps only pictures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Signal

from .jobs import JobResult, StepPreview
from .panel_values import PanelValues


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale by an integer factor (box filter) until the longer side fits; small images pass untouched."""
    h, w = image.shape[:2]
    factor = -(-max(h, w) // max_side)
    if factor <= 1:
        return image
    h2, w2 = h // factor, w // factor
    boxes = image[: h2 * factor, : w2 * factor].reshape(h2, factor, w2, factor, -1).mean(axis=(1, 3))
    return boxes.round().astype(np.uint8)


@dataclass(eq=False)
class RunTrack:
    run_id: int
    job_id: int
    values: PanelValues
    parent: tuple[int, int] | None
    total: int
    frames: list[np.ndarray] = field(default_factory=list)  # lineage previews, index = step
    sigmas: list[float] = field(default_factory=list)
    final: np.ndarray | None = None  # the finished image (full size)
    parameters: str = ""
    state: str = "running"  # running, done, cancelled, failed
    switch_step: int | None = None  # the lineage step where the SDXL refiner took over, if it did
    hires_step: int | None = None  # the lineage step where the hires fix's larger second pass began, if it did

    @property
    def first_own_step(self) -> int:
        return 0 if self.parent is None else self.parent[1] + 1


class TimelineModel(QObject):
    run_added = Signal(int)
    frame_added = Signal(int, int)  # run id, step index
    run_finished = Signal(int)
    runs_removed = Signal(list)
    current_changed = Signal(int)  # run id
    position_changed = Signal(int)  # step index; == len(frames) shows the final image

    def __init__(self, max_side: int = 128, budget_bytes: int = 64 * 2**20, parent: QObject | None = None):
        super().__init__(parent)
        self.max_side = max_side
        self.budget_bytes = budget_bytes
        self._runs: dict[int, RunTrack] = {}
        self._current: int | None = None
        self._position = 0

    # -- reading -------------------------------------------------------------------------------------
    def runs(self) -> list[RunTrack]:
        return list(self._runs.values())

    def run(self, run_id: int) -> RunTrack | None:
        return self._runs.get(run_id)

    @property
    def current(self) -> RunTrack | None:
        return self._runs.get(self._current) if self._current is not None else None

    @property
    def position(self) -> int:
        return self._position

    def position_count(self) -> int:
        """Slider positions of the current run: one per step, plus the final image once it exists."""
        track = self.current
        if track is None:
            return 0
        return len(track.frames) + (track.final is not None)

    def image_at(self, position: int) -> np.ndarray | None:
        track = self.current
        if track is None:
            return None
        if 0 <= position < len(track.frames):
            return track.frames[position]
        return track.final if position == len(track.frames) else None

    def children(self, run_id: int) -> list[RunTrack]:
        return [t for t in self._runs.values() if t.parent is not None and t.parent[0] == run_id]

    def branch_points(self, run_id: int) -> set[int]:
        """Steps of this run's lineage where a kept run branched off (its own or an ancestor's steps)."""
        track = self._runs.get(run_id)
        if track is None:
            return set()
        lineage = {run_id}
        parent = track.parent
        while parent is not None and parent[0] in self._runs:
            lineage.add(parent[0])
            parent = self._runs[parent[0]].parent
        return {t.parent[1] for t in self._runs.values()
                if t.parent is not None and t.parent[0] in lineage and t.run_id != run_id
                and t.parent[1] < len(track.frames)}

    def memory_bytes(self) -> int:
        seen: dict[int, int] = {}
        for track in self._runs.values():
            for frame in track.frames:
                seen[id(frame)] = frame.nbytes
            if track.final is not None:
                seen[id(track.final)] = track.final.nbytes
        return sum(seen.values())

    # -- engine events -------------------------------------------------------------------------------
    def add_step(self, event: StepPreview, values: PanelValues) -> None:
        track = self._runs.get(event.run_id)
        if track is None:
            track = RunTrack(event.run_id, event.job_id, values, event.parent, event.total)
            parent = self._runs.get(event.parent[0]) if event.parent else None
            if parent is not None:
                k = event.parent[1]
                track.frames = parent.frames[: k + 1]
                track.sigmas = parent.sigmas[: k + 1]
                if parent.switch_step is not None and parent.switch_step <= k:
                    track.switch_step = parent.switch_step
                if parent.hires_step is not None and parent.hires_step <= k:
                    track.hires_step = parent.hires_step
            self._runs[event.run_id] = track
            self.run_added.emit(event.run_id)
            self.select(event.run_id)
        # Follow the run as it streams in, unless the user has scrubbed back to look at an earlier step.
        following = self._position >= len(track.frames) - 1
        frame = shrink(event.preview, self.max_side)
        # A branch whose parent was dropped starts at a later index: pad so index == step.
        while len(track.frames) < event.index:
            track.frames.append(frame)
            track.sigmas.append(event.sigma)
        track.frames.append(frame)
        track.sigmas.append(event.sigma)
        track.total = event.total
        if event.model_switch:
            track.switch_step = event.index
        if event.hires_start:
            track.hires_step = event.index
        self.frame_added.emit(event.run_id, event.index)
        if event.run_id == self._current and following:
            self.set_position(event.index)
        self._trim()

    def finish(self, result: JobResult) -> None:
        track = self._runs.get(result.run_id)
        if track is None:
            return
        track.final = result.image
        track.parameters = result.parameters
        track.state = "done"
        self.run_finished.emit(result.run_id)
        if result.run_id == self._current:
            self.set_position(len(track.frames))

    def stop(self, run_id: int, state: str) -> None:
        if run_id in self._runs:
            self._runs[run_id].state = state
            self.run_finished.emit(run_id)

    # -- navigation ----------------------------------------------------------------------------------
    def select(self, run_id: int) -> None:
        if run_id not in self._runs:
            return
        self._current = run_id
        self.current_changed.emit(run_id)
        self.set_position(self.position_count() - 1)

    def set_position(self, position: int) -> None:
        count = self.position_count()
        position = max(0, min(position, count - 1)) if count else 0
        self._position = position
        self.position_changed.emit(position)

    def clear(self) -> None:
        removed = list(self._runs)
        self._runs.clear()
        self._current = None
        self._position = 0
        self.runs_removed.emit(removed)

    def _trim(self) -> None:
        removed = []
        for run_id in list(self._runs):
            if self.memory_bytes() <= self.budget_bytes:
                break
            if run_id == self._current or self._runs[run_id].state == "running":
                continue
            del self._runs[run_id]
            removed.append(run_id)
        if removed:
            self.runs_removed.emit(removed)
