"""The timeline: the runs (branches nested under the run they came from), the current run's steps as
thumbnails, a slider, Play, and "Continue from this step"."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..state.timeline import TimelineModel
from .marked_slider import MarkedSlider
from .thumb_strip import GAP, THUMB, ThumbStrip

PLAY_INTERVAL_MS = 80
BRANCH_TIP = "Start a new run from the shown step with the panel's current settings (Ctrl+B)"
BRANCH_AT_RESULT_TIP = ("The result is the end of the run. Pick a step in the timeline to continue from it; "
                        "the last step continues with more steps or new settings.")


class TimelineView(QFrame):
    branch_requested = Signal(int, int)  # run id, step index
    branch_enabled_changed = Signal(bool)  # whether the shown position is a step a new run can start from

    def __init__(self, model: TimelineModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("timeline")
        self.model = model
        self._build()
        model.run_added.connect(self._rebuild_runs)
        model.runs_removed.connect(self._rebuild_runs)
        model.run_finished.connect(self._on_run_finished)
        model.frame_added.connect(self._on_frame_added)
        model.current_changed.connect(self._on_current_changed)
        model.position_changed.connect(self._on_position_changed)
        self._sync_buttons()

    def _build(self) -> None:
        self.runs = QTreeWidget()
        self.runs.setObjectName("runs")
        self.runs.setHeaderHidden(True)
        self.runs.setIndentation(14)
        self.runs.setFixedWidth(230)
        self.runs.itemSelectionChanged.connect(self._on_run_picked)

        self.strip = ThumbStrip()
        self.scroll = QScrollArea()
        self.scroll.setObjectName("stripScroll")
        self.scroll.setWidget(self.strip)
        self.scroll.setWidgetResizable(False)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFixedHeight(self.strip.height() + 16)
        self.strip.clicked.connect(self.model.set_position)
        self.strip.step_by.connect(lambda d: self.model.set_position(self.model.position + d))

        self.slider = MarkedSlider()  # marks the step where the SDXL refiner took over
        self.slider.setObjectName("stepSlider")
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._on_slider)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Animate the run")
        self.play_button.toggled.connect(self._on_play)
        self.branch_button = QPushButton("Continue from this step")
        self.branch_button.setObjectName("branchButton")
        self.branch_button.setToolTip(BRANCH_TIP)
        self.branch_button.clicked.connect(self._on_branch)
        self.step_label = QLabel("No run yet — press Generate")
        self.step_label.setObjectName("stepLabel")
        self.step_label.setMinimumWidth(200)

        controls = QHBoxLayout()
        controls.setSpacing(8)
        controls.addWidget(self.play_button)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.step_label)
        controls.addWidget(self.branch_button)
        right = QVBoxLayout()
        right.setSpacing(4)
        right.addWidget(self.scroll)
        right.addLayout(controls)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(8)
        layout.addWidget(self.runs)
        layout.addLayout(right, 1)
        self.setFixedHeight(self.scroll.height() + 60)

        self._play_timer = QTimer(self)
        self._play_timer.setInterval(PLAY_INTERVAL_MS)
        self._play_timer.timeout.connect(self._on_play_tick)

    # -- model to view -------------------------------------------------------------------------------
    def _rebuild_runs(self, *_: object) -> None:
        self.runs.blockSignals(True)
        self.runs.clear()
        items: dict[int, QTreeWidgetItem] = {}
        for track in self.model.runs():
            prompt = track.values.prompt.strip().splitlines()[0] if track.values.prompt.strip() else "(no prompt)"
            text = f"Run {track.run_id} · {prompt}"
            if track.parent is not None:
                text = f"Run {track.run_id} ↳ from step {track.parent[1] + 1} · {prompt}"
            if track.state in ("cancelled", "failed"):
                text += f" ({track.state})"
            parent_item = items.get(track.parent[0]) if track.parent else None
            item = QTreeWidgetItem([text])
            item.setData(0, Qt.ItemDataRole.UserRole, track.run_id)
            item.setToolTip(0, text)
            if parent_item is not None:
                parent_item.addChild(item)
                parent_item.setExpanded(True)
            else:
                self.runs.addTopLevelItem(item)
            items[track.run_id] = item
        current = self.model.current
        if current is not None and current.run_id in items:
            self.runs.setCurrentItem(items[current.run_id])
            self.runs.scrollToItem(items[current.run_id])
        self.runs.blockSignals(False)
        self._refresh_strip()

    def _on_run_finished(self, run_id: int) -> None:
        self._rebuild_runs()

    def _on_frame_added(self, run_id: int, index: int) -> None:
        if self.model.current is not None and run_id == self.model.current.run_id:
            self._refresh_strip()

    def _on_current_changed(self, run_id: int) -> None:
        self._rebuild_runs()

    def _refresh_strip(self) -> None:
        track = self.model.current
        if track is None:
            self.strip.set_frames([], None, 0, set())
        else:
            self.strip.set_frames(track.frames, track.final, track.first_own_step,
                                  self.model.branch_points(track.run_id))
        self.strip.resize(self.strip.sizeHint())
        self.slider.blockSignals(True)
        self.slider.setRange(0, self._slider_end())
        self.slider.setValue(self.model.position)
        marks, tips = [], []
        if track is not None and track.switch_step is not None:
            marks.append(track.switch_step)
            tips.append(f"The refiner took over at step {track.switch_step + 1}")
        if track is not None and track.hires_step is not None:
            marks.append(track.hires_step)
            tips.append(f"The hires fix's larger pass began at step {track.hires_step + 1}")
        self.slider.set_marks(tuple(marks), "; ".join(tips))
        self.slider.blockSignals(False)
        self._sync_buttons()

    def _slider_end(self) -> int:
        """While a run streams in, the slider spans all its steps, so the handle shows how far it has got."""
        track = self.model.current
        end = self.model.position_count() - 1
        if track is not None and track.state == "running":
            end = max(end, track.total - 1)
        return max(0, end)

    def _on_position_changed(self, position: int) -> None:
        self.slider.blockSignals(True)
        if self.slider.maximum() < position:
            self.slider.setMaximum(position)
        self.slider.setValue(position)
        self.slider.blockSignals(False)
        self.strip.set_current(position)
        x = GAP + position * (THUMB + GAP)
        self.scroll.ensureVisible(x + THUMB // 2, THUMB // 2, THUMB, 0)
        self.step_label.setText(self._describe(position))
        self._sync_buttons()

    def _describe(self, position: int) -> str:
        track = self.model.current
        if track is None:
            return "No run yet — press Generate"
        if position >= len(track.frames):
            return f"Result · {len(track.frames)} steps"
        sigma = track.sigmas[position] if position < len(track.sigmas) else 0.0
        refiner = " · refiner" if track.switch_step is not None and position >= track.switch_step else ""
        hires = " · hires" if track.hires_step is not None and position >= track.hires_step else ""
        return f"Step {position + 1} of {track.total} · σ {sigma:.2f}{refiner}{hires}"

    def _sync_buttons(self) -> None:
        track = self.model.current
        # The engine keeps the states of finished and cancelled runs (not of failed ones) to branch from.
        branchable = track is not None and track.state in ("done", "cancelled") and len(track.frames) > 0
        # The result is where the run ended, not a step: continuing "from" it would run no step and only
        # copy the result. Continuing needs a step; the last one continues with more steps or new settings.
        at_result = track is not None and self.model.position >= len(track.frames)
        self.branch_button.setEnabled(branchable and not at_result)
        self.branch_button.setToolTip(BRANCH_AT_RESULT_TIP if branchable and at_result else BRANCH_TIP)
        self.branch_enabled_changed.emit(self.branch_button.isEnabled())
        self.play_button.setEnabled(self.model.position_count() > 1)

    # -- view to model -------------------------------------------------------------------------------
    def _on_slider(self, value: int) -> None:
        self.model.set_position(value)

    def _on_run_picked(self) -> None:
        item = self.runs.currentItem()
        if item is not None:
            self.model.select(int(item.data(0, Qt.ItemDataRole.UserRole)))

    def _on_branch(self) -> None:
        track = self.model.current
        if track is not None and self.model.position < len(track.frames):
            self.branch_requested.emit(track.run_id, self.model.position)

    def _on_play(self, playing: bool) -> None:
        if playing:
            if self.model.position >= self.model.position_count() - 1:
                self.model.set_position(0)
            self._play_timer.start()
            self.play_button.setText("Pause")
        else:
            self._play_timer.stop()
            self.play_button.setText("Play")

    def _on_play_tick(self) -> None:
        if self.model.position >= self.model.position_count() - 1:
            self.play_button.setChecked(False)
        else:
            self.model.set_position(self.model.position + 1)
