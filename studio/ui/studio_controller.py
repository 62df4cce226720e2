"""What the studio's widgets do together: generate, stream steps, scrub, branch, history, export, autosave.

The controller lives on the UI thread and only ever talks to the engine through EngineClient's queued
signals; it never waits on torch.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QInputDialog

from ..state.autosave import Autosave, Snapshot
from ..state.history import HistoryEntry
from ..state.job_builder import build_branch, build_jobs
from ..state.job_queue import JobQueue
from ..state.jobs import EngineCatalog, Job, JobFailure, JobResult, ModelChoice, StepPreview
from ..state.model_defaults import apply_model_defaults
from ..state.paths import StudioPaths
from ..state.progress import measure
from ..state.settings import Settings, save_settings
from ..state.timeline import RunTrack, TimelineModel
from ..worker.engine_client import STOP_WAIT_MS
from ..worker.engine_switch import EngineSwitch
from .about_dialog import AboutBox
from .control_preview import ControlPreview
from .file_actions import FileActions
from .main_window import MainWindow
from .model_parts_picker import ModelPartsPicker
from .prompt_hint import PromptHint
from .settings_dialog import SettingsDialog
from .theme import apply_theme
from .upscaler import Upscaler
from .xyz_plotter import XyzPlotter

# The toy model is the test suite's (a few shapes, no training): the picker lists it only when this is set,
# or when it is all there is (no embedded weights installed).
TEST_MODELS_ENV = "DIFFUSION_STUDIO_TEST_MODELS"
TEST_MODELS = ("toy",)
STEP_BATCH_MS = 30  # about 30 canvas updates a second while a run streams in
AUTOSAVE_DELAY_MS = 300  # short: the document must survive a kill -9 soon after an edit


def skipped_models_notice(reasons: tuple[str, ...], shown: int = 2) -> str:
    """One notice for the model files the scan could not use: the first few reasons, then a count."""
    more = f" (and {len(reasons) - shown} more)" if len(reasons) > shown else ""
    noun = "file" if len(reasons) == 1 else "files"
    return f"Skipped {len(reasons)} model {noun}: " + " · ".join(r[:300] for r in reasons[:shown]) + more


class StudioController(QObject):
    # After the window has taken in a finished (JobResult) or failed/cancelled (JobFailure) job.
    job_settled = Signal(object)
    _autosave_failed = Signal(object)  # from the writer thread, shown on the UI thread
    _history_failed = Signal(object)

    def __init__(self, window: MainWindow, engine: EngineSwitch, timeline: TimelineModel, paths: StudioPaths,
                 settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.window = window
        self.engine = engine
        self.timeline = timeline
        self.paths = paths
        self.settings = settings
        self.queue = JobQueue(self)
        self.history = window.history_view.model
        self.writer = self.history.writer  # one writer thread: autosave and history files, in order
        self.autosave = Autosave(paths.autosave_dir)
        self.last_seed: int | None = None
        self.files = FileActions(window, engine, timeline, self._known_models, self)
        self.files.export_folder = settings.export_folder
        self.files.exported.connect(self._remember_export_folder)
        self.catalog: EngineCatalog | None = None
        self._picked_model: str | None = None
        self._pending_steps: list[StepPreview] = []
        self._shut_down = False
        # How long closing waits for the engine's step or model load under way; the app, which ends the
        # process right after, waits less (a torch import kept a closed window's process alive for 10 s).
        self.engine_stop_wait_ms = STOP_WAIT_MS
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.setInterval(STEP_BATCH_MS)
        self._step_timer.timeout.connect(self._flush_steps)
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setSingleShot(True)
        self._autosave_timer.setInterval(AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.save_now)
        self._connect()
        self.prompt_hint = PromptHint(window.panel, engine, self)
        self.xyz = XyzPlotter(self)
        self.upscaler = Upscaler(self)
        self.model_parts = ModelPartsPicker(self)
        self.control_preview = ControlPreview(window, self)
        self.about = AboutBox(self)

    # -- wiring --------------------------------------------------------------------------------------
    def _connect(self) -> None:
        w, engine = self.window, self.engine
        self._autosave_failed.connect(self._show_autosave_error)
        self._history_failed.connect(lambda exc: w.banner.show_error(
            f"Could not save to the history folder {self.paths.history_dir}: {exc}"))
        engine.status.connect(w.status.set_engine_status)
        engine.ready.connect(self._on_ready)
        engine.start_failed.connect(self._on_start_failed)
        engine.model_loaded.connect(self._on_model_loaded)
        engine.step.connect(self._on_step)
        engine.finished.connect(self._on_finished)
        engine.failed.connect(self._on_failed)
        engine.adapters_listed.connect(w.panel.set_adapters)
        engine.connection.connect(self._on_connection)

        w.panel.generate_requested.connect(self.generate)
        w.panel.model_selected.connect(self._on_model_selected)
        w.panel.values_changed.connect(self._schedule_autosave)
        for picker in (w.panel.lora_button, w.panel.embedding_button):
            picker.opened.connect(self._list_adapters)  # a file copied in since shows up
        for unit in w.panel.controlnets.units:
            unit.model.opened.connect(self._list_adapters)  # the ControlNet pickers too
        w.generate_action.triggered.connect(self.generate)
        w.generate_enter_action.triggered.connect(self.generate)
        w.cancel_action.triggered.connect(self.cancel)
        w.status.cancel_button.clicked.connect(self.cancel)
        w.branch_action.triggered.connect(lambda: w.timeline_view.branch_button.click())
        w.timeline_view.branch_enabled_changed.connect(w.branch_action.setEnabled)
        w.branch_action.setEnabled(w.timeline_view.branch_button.isEnabled())
        w.timeline_view.branch_requested.connect(self.branch)
        self.timeline.position_changed.connect(self._show_position)
        self.queue.changed.connect(self._on_queue_changed)

        w.canvas.mask_changed.connect(self._schedule_autosave)
        w.canvas.control_changed.connect(self._schedule_autosave)
        w.canvas.image_changed.connect(self._schedule_autosave)
        w.canvas.status_message.connect(lambda text: w.statusBar().showMessage(text, 4000))
        w.history_view.open_requested.connect(self.open_history_entry)
        w.history_view.settings_requested.connect(self.use_history_settings)
        w.history_view.message.connect(lambda text: w.statusBar().showMessage(text, 8000))

        w.extend_action.triggered.connect(self._ask_extend)
        w.settings_action.triggered.connect(self._ask_settings)
        w.closing.connect(self.shutdown)

    # -- generating ----------------------------------------------------------------------------------
    def generate(self) -> None:
        """Queue one job per image of the batch from the panel and the canvas."""
        values = self.window.panel.values()
        self.window.panel.mark_field(None)
        canvas = self.window.canvas
        jobs = build_jobs(values, canvas.image(), canvas.mask(), self.last_seed, self.queue.next_id,
                          canvas.control_image())
        if canvas.control_mode() and canvas.has_control() and not any(u.enabled for u in values.controlnets):
            # Drawn and on show, yet nothing reads it: say so rather than leave the user wondering.
            self.window.banner.show_notice("The control layer is not used: switch on a unit in the panel's "
                                           "ControlNet group.")
        self.queue.add(jobs)
        self._dispatch()

    def branch(self, run_id: int, step: int) -> None:
        """Continue ``run_id`` after ``step`` with the panel's current settings, as a new run."""
        track = self.timeline.run(run_id)
        if track is None:
            return
        canvas = self.window.canvas
        job = build_branch(self.window.panel.values(), track.values, run_id, step, canvas.image(), canvas.mask(),
                           self.queue.next_id(), canvas.control_image())
        self.queue.add([job])
        self._dispatch()

    def enqueue(self, jobs: list[Job]) -> None:
        """Queue jobs built elsewhere (an X/Y/Z plot's cells) and start the first if the engine is idle."""
        self.queue.add(jobs)
        self._dispatch()

    def cancel(self) -> None:
        """Stop the running images before their next step and drop everything waiting."""
        self.queue.clear_pending()
        for job in self.queue.running_jobs():
            self.engine.cancel(job.job_id)

    def _dispatch(self) -> None:
        """Start waiting jobs while the engine takes more: one at a time on this computer, several on a server
        (its replicas each run one while the next waits), each streaming into its own run as it comes."""
        self.queue.capacity = self.engine.parallel_jobs
        while (job := self.queue.take_next()) is not None:
            if job is self.queue.running:
                self.window.status.set_progress(measure(0, job.values.steps, 0))
            self.engine.submit(job)

    def _on_queue_changed(self) -> None:
        self.window.status.set_queue(self.queue.running is not None, len(self.queue.pending()))

    # -- engine events -------------------------------------------------------------------------------
    def _on_ready(self, catalog: EngineCatalog) -> None:
        catalog = picker_catalog(catalog)
        self.catalog = catalog
        self.window.panel.set_catalog(catalog)
        if catalog.skipped_models:
            # Stays until dismissed: the user put these files there and needs to act on them.
            self.window.banner.show_error(skipped_models_notice(catalog.skipped_models))

    def _known_models(self) -> set[str]:
        return {m.key for m in self.catalog.models} if self.catalog else set()

    def _on_start_failed(self, message: str) -> None:
        self.window.status.set_engine_status("Engine not running")
        self.window.banner.show_error(message)

    def _on_model_loaded(self, choice: ModelChoice) -> None:
        panel = self.window.panel
        panel.set_model_info(choice)
        if choice.key == self._picked_model:
            # A model the user just picked starts at its size and recommended settings (not on a restore).
            self._picked_model = None
            values, summary = apply_model_defaults(panel.values(), choice)
            panel.set_values(values)
            if summary:
                self.window.statusBar().showMessage(summary, 8000)

    def _list_adapters(self) -> None:
        if self.engine.started:
            self.engine.list_adapters()

    def _on_model_selected(self, key: str) -> None:
        if key:
            self._picked_model = key
            self.engine.preload(key)

    def _on_step(self, event: StepPreview) -> None:
        # Steps are taken in batches, at most every STEP_BATCH_MS: the timeline keeps every one, but the
        # canvas, strip and progress repaint once per batch instead of once per step (fast models make
        # hundreds of steps a second, and each repaint would delay the UI's other events).
        self._pending_steps.append(event)
        if not self._step_timer.isActive():
            self._step_timer.start()

    def _flush_steps(self) -> None:
        self._step_timer.stop()
        events, self._pending_steps = self._pending_steps, []
        jobs = {job.job_id: job for job in self.queue.running_jobs()}
        events = [e for e in events if e.job_id in jobs]
        if not events:
            return
        # The progress bar follows the oldest running job (the only one on this computer's engine).
        oldest = self.queue.running
        own = [e for e in events if oldest is not None and e.job_id == oldest.job_id]
        if own:
            last = own[-1]
            first = 0 if last.parent is None else last.parent[1] + 1
            # Before the steps land: QProgressBar.setValue repaints at once, so it is called once per batch.
            self.window.status.set_progress(measure(last.index - first + 1, last.total - first, last.elapsed))
        for event in events:
            self.timeline.add_step(event, jobs[event.job_id].values)

    def _on_finished(self, result: JobResult) -> None:
        self._flush_steps()
        self.window.canvas.set_image(result.image)
        # The result is what the user waited for: not dimmed under the control layer (Ctrl+L shows it again).
        self.window.canvas.set_control_mode(False)
        self.files.document_parameters = result.parameters
        self.last_seed = result.values.seed
        self.window.panel.show_used_seed(result.values.seed)  # Random mode: the box shows the seed just used
        self.timeline.finish(result)
        self.history.add(result.image, result.values, result.parameters, result.model_label, self._history_failed.emit)
        if self.queue.running is None or self.queue.running.job_id == result.job_id:
            self.window.status.set_progress(None)
        self.window.statusBar().showMessage(
            f"Done: {result.steps_run} steps in {result.elapsed:.1f} s (seed {result.values.seed})", 5000)
        self.queue.finish(result.job_id)
        self.job_settled.emit(result)
        self._dispatch()

    def _on_failed(self, failure: JobFailure) -> None:
        self._flush_steps()
        # The job's last run: a job sent again after a dropped connection has an interrupted run before it.
        track = next((t for t in reversed(self.timeline.runs()) if t.job_id == failure.job_id), None)
        if track is not None:
            self.timeline.stop(track.run_id, "cancelled" if failure.cancelled else "failed")
        if self.queue.running is None or self.queue.running.job_id == failure.job_id:
            self.window.status.set_progress(None)
        if failure.cancelled and track is not None and track.frames:
            self._show_cancelled(track)
        elif failure.cancelled:  # before its first step: nothing ran, the document stays
            self.window.banner.show_notice(failure.message)
            self.window.canvas.show_document()
        else:
            self.window.banner.show_error(failure.message)
            self.window.panel.mark_field(failure.field)
            self.window.canvas.show_document()
        self.queue.finish(failure.job_id)
        self.job_settled.emit(failure)
        self._dispatch()

    def _on_connection(self, message: str) -> None:
        """A studio server stopped answering (``message``; the job is sent again once it answers) or answers again."""
        if not message:
            self.window.banner.show_notice("Connected to the studio server again.")
            return
        self._flush_steps()
        running = {job.job_id for job in self.queue.running_jobs()}
        for track in self.timeline.runs():  # what came of the interrupted runs stays, marked as such
            if track.job_id in running and track.state == "running":
                self.timeline.stop(track.run_id, "failed")
        self.window.banner.show_error(message)

    def _show_cancelled(self, track: RunTrack) -> None:
        """The last step that ran, everywhere: the slider and the canvas stop on it, the banner names it."""
        ran = len(track.frames)
        if self.timeline.current is track:
            self.timeline.set_position(ran - 1)
            self._show_position(ran - 1)  # also when the position was already there
        self.window.banner.show_notice(f"Cancelled after step {ran} of {track.total}.")

    # -- timeline ------------------------------------------------------------------------------------
    def _show_position(self, position: int) -> None:
        track = self.timeline.current
        image = self.timeline.image_at(position)
        if track is None or image is None:
            return
        if image is track.final:
            self.window.canvas.show_frame(image) if self._document_is_not(image) else self.window.canvas.show_document()
        else:
            self.window.canvas.show_frame(image)

    def _document_is_not(self, image: np.ndarray) -> bool:
        doc = self.window.canvas.image()
        return doc.shape != image.shape or not np.array_equal(doc, image)

    def open_history_entry(self, entry: HistoryEntry) -> None:
        try:
            self.window.canvas.set_image(entry.load_image())
        except ValueError as exc:
            self.window.banner.show_error(str(exc))
            return
        self.files.document_parameters = entry.parameters

    def use_history_settings(self, entry: HistoryEntry) -> None:
        self.window.panel.set_values(entry.values.with_changes(seed_mode="fixed"))

    # -- dialogs and persistence -----------------------------------------------------------------------
    def _ask_extend(self) -> None:
        pixels, ok = QInputDialog.getInt(self.window, "Extend canvas", "Pixels to add on every side (masked for "
                                         "outpainting):", 8, 8, 512, 8)
        if ok:
            self.window.canvas.extend(pixels, pixels, pixels, pixels)
            image = self.window.canvas.image()
            panel = self.window.panel
            panel.set_values(panel.values().with_changes(width=image.shape[1], height=image.shape[0]))

    def _remember_export_folder(self, saved: Path) -> None:
        """The export dialogs open where the last export went, in later sessions too (written on close)."""
        self.settings = self.settings.with_changes(export_folder=str(saved.parent))

    def _ask_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self.window)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def choose_engine(self) -> None:
        """This computer's engine or the settings' studio server, from now on (started by ``start_engine``)."""
        s = self.settings
        if s.on_server:
            try:
                self.engine.use_server(s.server_url, s.server_token)
                return
            except ValueError as exc:  # an address edited by hand in the settings file
                self.window.banner.show_error(f"Cannot use the studio server: {exc}. Running on this computer.")
        self.engine.use_local()

    def start_engine(self) -> None:
        s = self.settings
        self.engine.start(s.device, s.threads, self.window.panel.values().model, s.model_folders, s.model_parts,
                          s.gpu_memory)

    def _switch_engine(self) -> None:
        """Stop the job under way (it ran on the engine being left), then run on the settings' engine."""
        running = self.queue.running_jobs()
        self.queue.clear_pending()
        self.choose_engine()
        for job in running:
            self._on_failed(JobFailure(job.job_id, "Stopped: the engine was switched.", cancelled=True))
        self.start_engine()

    def apply_settings(self, settings: Settings) -> None:
        """Keep and save new settings; the theme and the engine change at once, device and threads at the next
        start."""
        switch = ((settings.on_server, settings.server_url, settings.server_token)
                  != (self.settings.on_server, self.settings.server_url, self.settings.server_token))
        if switch and not settings.on_server and not self.settings.on_server:
            switch = False  # only the kept address changed
        restart = (settings.device, settings.threads) != (self.settings.device, self.settings.threads)
        rescan = settings.model_folders != self.settings.model_folders
        memory = settings.gpu_memory != self.settings.gpu_memory
        self.settings = settings
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, settings.theme)
        self.save_settings()
        if switch:
            self._switch_engine()
        elif rescan and self.engine.started:
            self.engine.rescan(settings.model_folders)
        if memory and self.engine.started and not settings.on_server:  # a server places its models itself
            self.engine.set_gpu_memory(settings.gpu_memory)
            self.engine.preload(self.window.panel.values().model)  # placed anew now: the model card says how
        if restart and not settings.on_server:
            self.window.banner.show_notice("The new device and thread settings apply after a restart.")

    # -- persistence ---------------------------------------------------------------------------------
    def restore(self) -> str | None:
        """Put back the autosaved document and panel (after a crash too); else the settings' panel values.

        Returns the message for the window when the autosave was damaged (and set aside)."""
        snapshot, message = self.autosave.recover()
        panel = snapshot.panel or self.settings.panel
        self.window.panel.set_values(panel)
        canvas = self.window.canvas
        if snapshot.image is not None:
            canvas.set_image(snapshot.image, undoable=False)
            if snapshot.mask is not None:
                canvas.set_mask(snapshot.mask, undoable=False)
            if snapshot.control is not None:
                canvas.set_control_image(snapshot.control, undoable=False, show=False)
        else:
            canvas.set_image(np.full((panel.height, panel.width, 3), 48, np.uint8), undoable=False)
        if self.settings.window_geometry:
            self.window.restoreGeometry(QByteArray.fromHex(self.settings.window_geometry.encode()))
        self.window.panel.set_advanced_open(self.settings.advanced_open)
        self._autosave_timer.stop()
        return message

    def _schedule_autosave(self) -> None:
        self._autosave_timer.start()

    def save_now(self) -> None:
        """Autosave the document; the copies are taken here, the files written on the background writer."""
        canvas = self.window.canvas
        snapshot = Snapshot(canvas.image(), canvas.mask(), self.window.panel.values(), canvas.control_image())
        self.writer.submit(lambda: self.autosave.save(snapshot), self._autosave_failed.emit)

    def _show_autosave_error(self, exc: BaseException) -> None:
        self.window.banner.show_error(f"Autosave failed ({self.paths.autosave_dir}): {exc}")

    def save_settings(self) -> None:
        geometry = bytes(self.window.saveGeometry().toHex()).decode()
        self.settings = self.settings.with_changes(panel=self.window.panel.values(), window_geometry=geometry,
                                                   advanced_open=self.window.panel.advanced_open())
        try:
            save_settings(self.paths.settings_file, self.settings)
        except OSError as exc:
            self.window.banner.show_error(f"Could not save settings to {self.paths.settings_file}: {exc}")

    def shutdown(self) -> None:
        """Save the settings and the document, stop the engine, write what is queued; once (later calls
        do nothing)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._autosave_timer.stop()
        self.save_now()
        self.save_settings()
        self.engine.stop(self.engine_stop_wait_ms)
        self.history.purge_deleted()  # a delete can be undone until the window closes
        self.writer.flush()


def picker_catalog(catalog: EngineCatalog) -> EngineCatalog:
    """The engine's catalog without its test models, unless they are asked for or are the default."""
    if os.environ.get(TEST_MODELS_ENV) or catalog.default_model in TEST_MODELS:
        return catalog
    return dataclasses.replace(catalog, models=tuple(m for m in catalog.models if m.key not in TEST_MODELS))
