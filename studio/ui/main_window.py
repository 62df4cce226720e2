"""The studio window: layout and menus only. What the widgets do together lives in StudioController."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QSplitter, QVBoxLayout, QWidget

from ..io.image_formats import is_image_path
from ..state.history import HistoryModel
from ..state.timeline import TimelineModel
from .canvas import CanvasToolbar, CanvasView
from .history_view import HistoryView
from .message_banner import MessageBanner
from .prompt_panel import PromptPanel
from .status_strip import StatusStrip
from .timeline_view import TimelineView
from .toolbar_scroller import ToolbarScroller
from .window_shortcuts import WindowShortcuts


class MainWindow(QMainWindow):
    file_dropped = Signal(str)
    closing = Signal()

    def __init__(self, timeline: TimelineModel, history: HistoryModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Diffusion Studio")
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)
        screen = QGuiApplication.primaryScreen().availableGeometry()
        self.resize(min(1600, int(screen.width() * 0.94)), min(960, int(screen.height() * 0.92)))

        self.banner = MessageBanner()
        self.panel = PromptPanel()
        self.canvas = CanvasView()
        self.canvas.setObjectName("canvas")
        self.canvas_toolbar = CanvasToolbar(self.canvas)
        self.timeline_view = TimelineView(timeline)
        self.history_view = HistoryView(history)
        self.status = StatusStrip()
        self.status.attach(self.statusBar())

        middle = QWidget()
        middle.setObjectName("canvasArea")
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        middle_layout.setSpacing(0)
        middle_layout.addWidget(ToolbarScroller(self.canvas_toolbar))
        middle_layout.addWidget(self.canvas, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.panel)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(self.history_view)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([340, 1000, 230])

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.timeline_view)
        self.setCentralWidget(central)
        self._build_actions()
        self.shortcuts = WindowShortcuts(self)

    def _action(self, text: str, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("Open image…", QKeySequence.StandardKey.Open)
        self.paste_action = self._action("Paste image", "Ctrl+Shift+V")
        self.export_action = self._action("Export image…", "Ctrl+E", "PNG with parameters, JPEG or WebP")
        self.export_animation_action = self._action("Export run as animation…", "Ctrl+Shift+E")
        self.copy_action = self._action("Copy image", "Ctrl+Shift+C")
        self.settings_action = self._action("Settings…", "Ctrl+,")
        self.quit_action = self._action("Quit", QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        self.generate_action = self._action("Generate", "Ctrl+Return")
        self.generate_enter_action = self._action("Generate (keypad)", "Ctrl+Enter")
        self.cancel_action = self._action("Cancel", "Escape")
        self.branch_action = self._action("Continue from this step", "Ctrl+B")
        self.xyz_action = self._action("X/Y/Z plot…", "Ctrl+Shift+X", "Vary up to three settings: a labelled grid")
        self.upscale_action = self._action("Upscale…", "Ctrl+Shift+U",
                                           "Make the canvas image larger: Lanczos or an upscaler model (ESRGAN, ...)")
        undo = self.canvas.undo_stack().createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.canvas.undo_stack().createRedoAction(self, "Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.clear_mask_action = self._action("Clear mask")
        self.invert_mask_action = self._action("Invert mask", "Ctrl+Shift+I")
        self.extend_action = self._action("Extend canvas for outpainting…")
        self.control_layer_action = self._action("Control layer", "Ctrl+L",
                                                 "Show the ControlNet control layer and draw on it")
        self.control_layer_action.setCheckable(True)
        self.control_layer_action.toggled.connect(self.canvas.set_control_mode)
        self.canvas.control_mode_changed.connect(self.control_layer_action.setChecked)
        self.open_control_action = self._action("Open into control layer…", "Ctrl+Shift+O",
                                                "Load an image as the ControlNet control image")
        self.paste_control_action = self._action("Paste into control layer")
        self.clear_control_action = self._action("Clear control layer")
        self.clear_control_action.triggered.connect(self.canvas.clear_control)
        self.zoom_fit_action = self._action("Zoom to fit", "Ctrl+0")
        self.zoom_100_action = self._action("Zoom 100 %", "Ctrl+1")
        self.about_action = self._action("About Diffusion Studio", tip="Version, torch, device, where files live")
        self.clear_mask_action.triggered.connect(self.canvas.clear_mask)
        self.invert_mask_action.triggered.connect(self.canvas.invert_mask)
        self.zoom_fit_action.triggered.connect(self.canvas.zoom_fit)
        self.zoom_100_action.triggered.connect(self.canvas.zoom_100)
        # The canvas handles these keys itself while it has focus; window-wide they would be ambiguous.
        for action in (undo, redo, self.invert_mask_action, self.zoom_fit_action, self.zoom_100_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.open_action, self.paste_action, self.open_control_action, self.paste_control_action,
                       None, self.export_action,
                       self.export_animation_action, self.copy_action, None, self.settings_action, None,
                       self.quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        edit_menu = bar.addMenu("&Edit")
        for action in (undo, redo, None, self.clear_mask_action, self.invert_mask_action, self.extend_action, None,
                       self.clear_control_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)
        image_menu = bar.addMenu("&Image")
        image_menu.addAction(self.upscale_action)
        generate_menu = bar.addMenu("&Generate")
        for action in (self.generate_action, self.cancel_action, self.branch_action, self.xyz_action):
            generate_menu.addAction(action)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.control_layer_action)
        view_menu.addSeparator()
        view_menu.addAction(self.zoom_fit_action)
        view_menu.addAction(self.zoom_100_action)
        bar.addMenu("&Help").addAction(self.about_action)

    # -- drag and drop: a PNG with parameters restores its settings ------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if any(is_image_path(u.toLocalFile()) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        for url in event.mimeData().urls():
            if is_image_path(url.toLocalFile()):
                self.file_dropped.emit(url.toLocalFile())
                event.acceptProposedAction()
                return

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.closing.emit()
        super().closeEvent(event)
