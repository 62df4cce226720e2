"""Images in and out of the studio: open and drop (restoring settings from parameters), paste, copy, export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from ..engine.model_fit import ModelTraits, fit_to_model
from ..engine.request import GenerationRequest
from ..io.animation import save_animation
from ..io.image_formats import OPEN_FILTER
from ..io.parameters import ParametersError, parse_parameters
from ..io.png import load_image, read_parameters
from ..state.export_names import export_stem
from ..state.jobs import SD_PREFIX, ModelChoice
from ..state.panel_values import NON_KARRAS_SPACING, PanelValues
from ..state.qimages import from_qimage
from ..state.timeline import TimelineModel
from ..worker import EngineClient
from .export import ANIMATION_FILTER, IMAGE_FILTER, copy_to_clipboard, export_image
from .main_window import MainWindow


def model_key_for(name: str, keys: set[str]) -> str:
    """The catalog key of the model a parameters text names ("Refiner: sd_xl_refiner_1.0" is the file
    .../sd_xl_refiner_1.0.safetensors, or a diffusers folder of that name), so the panel's picker shows it;
    a name no listed model has is kept as written (the engine looks for it, and names the closest)."""
    wanted = name.strip().lower()
    if not wanted or name in keys:
        return name
    for key in sorted(keys):
        path = Path(key.removeprefix(SD_PREFIX))
        if wanted in (path.stem.lower(), path.name.lower()):
            return key
    return name


class FileActions(QObject):
    settings_restored = Signal(str)  # file name, after a dropped image's parameters reached the panel
    exported = Signal(object)  # Path of a saved export

    def __init__(self, window: MainWindow, engine: EngineClient, timeline: TimelineModel,
                 known_models: Callable[[], set[str]], parent: QObject | None = None):
        super().__init__(parent)
        self.window = window
        self.engine = engine
        self.timeline = timeline
        self._known_models = known_models
        self.document_parameters: str | None = None  # parameters of the image on the canvas, when known
        self.export_folder = ""  # the controller keeps it in the settings
        self._loaded_models: dict[str, ModelChoice] = {}  # what each model that has loaded can do
        engine.model_loaded.connect(self._remember_model)
        w = window
        w.canvas.image_dropped.connect(self.open_file)
        w.file_dropped.connect(self.open_file)
        w.open_action.triggered.connect(self._ask_open)
        w.paste_action.triggered.connect(self.paste_image)
        w.canvas.control_image_dropped.connect(self.open_control_file)
        w.open_control_action.triggered.connect(self._ask_open_control)
        w.paste_control_action.triggered.connect(self.paste_control_image)
        w.export_action.triggered.connect(self._ask_export_image)
        w.export_animation_action.triggered.connect(self._ask_export_animation)
        w.copy_action.triggered.connect(self.copy_image)

    def open_file(self, path: str) -> None:
        """Load an image onto the canvas; when it carries generation parameters, restore them in the panel."""
        name = Path(path).name
        try:
            image = load_image(path)
        except ValueError as exc:  # ImageFileError: the message names the file and the problem
            self.window.banner.show_error(f"Could not open the image: {exc}")
            return
        try:
            parameters = read_parameters(path)
        except (OSError, ValueError, SyntaxError) as exc:  # a broken EXIF block: the pixels are still good
            parameters = None
            unreadable = f"; its generation parameters could not be read ({exc})"
        else:
            unreadable = ""
        self.window.canvas.set_image(image)
        self.document_parameters = parameters
        if parameters:
            self.restore_parameters(parameters, name)
        elif unreadable:
            self.window.banner.show_notice(f"Opened {name}{unreadable}.")
        else:
            self.window.banner.show_notice(f"Opened {name} (it has no generation parameters).")

    def open_control_file(self, path: str) -> None:
        """Load an image into the control layer (stretched to the canvas); its parameters are not read."""
        try:
            image = load_image(path)
        except ValueError as exc:
            self.window.banner.show_error(f"Could not open the control image: {exc}")
            return
        self.window.canvas.set_control_image(image)
        self.window.statusBar().showMessage(f"{Path(path).name} is the control image", 5000)

    def paste_control_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.window.banner.show_notice("The clipboard holds no image.")
            return
        self.window.canvas.set_control_image(from_qimage(image))

    def restore_parameters(self, text: str, name: str) -> None:
        """Put the settings in parameters text into the panel (parsed here, on the UI thread: no torch needed)."""
        panel = self.window.panel
        current = panel.values()
        try:
            parsed = parse_parameters(text, base=GenerationRequest(**current.request_fields()))
        except ParametersError as exc:
            self.window.banner.show_error(f"Could not read the parameters in {name}: {exc}")
            return
        request = parsed.request
        known = self._known_models()
        model = request.model if request.model in known or not known else current.model
        fitted = fit_to_model(request.width, request.height, request.clip_skip, self._traits(model))
        fields = {k: getattr(request, k) for k in current.request_fields()} | {
            "model": model, "width": fitted.width, "height": fitted.height, "clip_skip": fitted.clip_skip,
            "controlnets": request.controlnets,  # units it names are switched on, the others off
            "refiner": model_key_for(request.refiner, known)}
        values, panel_notices = PanelValues.from_request_fields_with_notices(fields, base=current)
        notices = [*parsed.notices, *fitted.notices, *panel_notices]
        # The panel has a Karras switch and keeps the spacing flow models need (trailing) behind it, no more.
        if values.spacing not in ("karras", NON_KARRAS_SPACING, "trailing"):
            notices.append(f"Schedule {values.spacing} has no switch in the panel: set to {NON_KARRAS_SPACING}.")
            values = values.with_changes(spacing=NON_KARRAS_SPACING)
        panel.set_values(values)
        # Values beyond what the panel or the model can use were brought into range: say which.
        self.window.banner.show_notice(" ".join([f"Settings restored from {name}.", *notices]))
        self.settings_restored.emit(name)

    def _remember_model(self, choice: ModelChoice) -> None:
        self._loaded_models[choice.key] = choice

    def _traits(self, key: str) -> ModelTraits:
        """What the model that will run these settings can do (its size unknown until it has loaded once)."""
        choice = self._loaded_models.get(key)
        if choice is None:
            return ModelTraits(key or "the model", None)
        return ModelTraits(choice.label, choice.default_size, choice.size_multiple, bool(choice.clip_skip))

    def paste_image(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.window.banner.show_notice("The clipboard holds no image.")
            return
        self.window.canvas.set_image(from_qimage(image))
        self.document_parameters = None

    def export_image(self, path: str | Path) -> Path | None:
        try:
            saved = export_image(path, self.window.canvas.image(), self.document_parameters)
        except (OSError, ValueError) as exc:
            self.window.banner.show_error(f"Export failed: {exc}")
            return None
        self.window.statusBar().showMessage(f"Saved {saved}", 5000)
        self._exported(saved)
        return saved

    def export_run(self, path: str | Path) -> Path | None:
        track = self.timeline.current
        try:
            if track is None:
                raise ValueError("there is no run to export yet: generate an image first")
            saved = save_animation(path, track.frames, track.final)
        except (OSError, ValueError) as exc:
            self.window.banner.show_error(f"Export failed: {exc}")
            return None
        self.window.statusBar().showMessage(f"Saved {saved}", 5000)
        self._exported(saved)
        return saved

    def copy_image(self) -> None:
        copy_to_clipboard(self.window.canvas.image())
        self.window.statusBar().showMessage("Image copied to the clipboard", 3000)

    def _ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open image", "", OPEN_FILTER)
        if path:
            self.open_file(path)

    def _ask_open_control(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open into control layer", "", OPEN_FILTER)
        if path:
            self.open_control_file(path)

    def _ask_export_image(self) -> None:
        prompt, seed = self._document_prompt_and_seed()
        proposed = self._export_folder() / f"{export_stem(prompt, seed)}.png"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export image", str(proposed), IMAGE_FILTER)
        if path:
            self.export_image(path)

    def _ask_export_animation(self) -> None:
        track = self.timeline.current
        stem = export_stem(track.values.prompt, track.values.seed) if track is not None else "image"
        proposed = self._export_folder() / f"{stem}-run.gif"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export run", str(proposed), ANIMATION_FILTER)
        if path:
            self.export_run(path)

    def _export_folder(self) -> Path:
        """The folder of the last export (kept in the settings); at first the Pictures folder, else home."""
        if self.export_folder and Path(self.export_folder).is_dir():
            return Path(self.export_folder)
        pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        return Path(pictures) if pictures and Path(pictures).is_dir() else Path.home()

    def _document_prompt_and_seed(self) -> tuple[str, int | None]:
        if not self.document_parameters:
            return "", None
        try:
            request = parse_parameters(self.document_parameters).request
        except (ParametersError, ValueError):
            return "", None
        return request.prompt, request.seed

    def _exported(self, saved: Path) -> None:
        self.export_folder = str(saved.parent)
        self.exported.emit(saved)
