"""The history gallery: every finished image with its parameters; open, reuse settings, delete and undo."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..state.history import THUMB_SIDE, HistoryEntry, HistoryModel
from .history_caption import CAPTION_LINES, CaptionDelegate


class HistoryView(QFrame):
    open_requested = Signal(object)  # HistoryEntry
    settings_requested = Signal(object)  # HistoryEntry
    message = Signal(str)  # for the status bar

    def __init__(self, model: HistoryModel, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("history")
        self.model = model
        title = QLabel("History")
        title.setObjectName("sectionTitle")
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        self.list = QListView()
        self.list.setObjectName("historyList")
        self.list.setModel(model)
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        # Two lines of caption under each thumbnail: the prompt wraps, what is left is elided, and the
        # tooltip (the image's parameters, prompt first) has all of it.
        line = self.list.fontMetrics().lineSpacing()
        self.list.setGridSize(QSize(THUMB_SIDE + 24, THUMB_SIDE + CAPTION_LINES * line + 14))
        self.list.setItemDelegate(CaptionDelegate(THUMB_SIDE + 16, THUMB_SIDE, self.list))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.installEventFilter(self)  # Ctrl+Z in the list undoes a delete
        self.list.doubleClicked.connect(lambda index: self.open_requested.emit(model.entry(index.row())))
        self.list.selectionModel().selectionChanged.connect(self._sync)

        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Put this image on the canvas")
        self.reuse_button = QPushButton("Reuse")
        self.reuse_button.setToolTip("Load this image's settings into the prompt panel")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setObjectName("deleteButton")
        self.delete_button.setToolTip("Delete the selected images (Delete); Undo delete or Ctrl+Z brings them back")
        self.undo_button = QToolButton()
        self.undo_button.setText("Undo delete")
        self.undo_button.setAutoRaise(True)
        self.undo_button.setObjectName("undoDeleteButton")
        self.undo_button.setToolTip("Bring back the last deleted image (Ctrl+Z in the history)")
        self.undo_button.clicked.connect(self.undo_delete)
        self.open_button.clicked.connect(lambda: self._emit(self.open_requested))
        self.reuse_button.clicked.connect(lambda: self._emit(self.settings_requested))
        self.delete_button.clicked.connect(self.delete_selected)
        QShortcut(QKeySequence.StandardKey.Delete, self.list, self.delete_selected,
                  Qt.ShortcutContext.WidgetShortcut)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for button in (self.open_button, self.reuse_button, self.delete_button):
            buttons.addWidget(button)
        header = QHBoxLayout()
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.undo_button)  # shown while a delete can be undone
        header.addWidget(self.count_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(header)
        self.empty_hint = QLabel("Finished images appear here, with their settings. They are kept between "
                                 "sessions.")
        self.empty_hint.setObjectName("hint")
        self.empty_hint.setWordWrap(True)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.setMinimumWidth(200)
        model.rowsInserted.connect(self._sync)
        model.rowsRemoved.connect(self._sync)
        self._sync()

    def selected(self) -> HistoryEntry | None:
        rows = self.list.selectionModel().selectedRows()
        return self.model.entry(rows[0].row()) if rows else None

    def select_row(self, row: int) -> None:
        self.list.setCurrentIndex(self.model.index(row))

    def delete_selected(self) -> None:
        rows = sorted((i.row() for i in self.list.selectionModel().selectedRows()), reverse=True)
        deleted = [self.model.delete(row) for row in rows]
        if deleted:
            what = "1 image" if len(deleted) == 1 else f"{len(deleted)} images"
            self.message.emit(f"Deleted {what} from the history — Undo delete (or Ctrl+Z in the history) brings "
                              f"{'it' if len(deleted) == 1 else 'them'} back")
        self._sync()

    def undo_delete(self) -> None:
        entry = self.model.undo_delete()
        if entry is not None:
            self.select_row(self.model.row_of(entry))
            self.message.emit("Deleted image restored")
        self._sync()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        # Claimed before the window's Ctrl+Z (the canvas's undo) while the list has focus.
        if watched is self.list and event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            if isinstance(event, QKeyEvent) and event.matches(QKeySequence.StandardKey.Undo) \
                    and self.model.can_undo_delete():
                if event.type() == QEvent.Type.KeyPress:
                    self.undo_delete()
                event.accept()
                return True
        return super().eventFilter(watched, event)

    def _emit(self, signal) -> None:
        entry = self.selected()
        if entry is not None:
            signal.emit(entry)

    def _sync(self, *_: object) -> None:
        has = self.selected() is not None
        for button in (self.open_button, self.reuse_button, self.delete_button):
            button.setEnabled(has)
        self.undo_button.setVisible(self.model.can_undo_delete())
        n = self.model.rowCount()
        self.count_label.setText(f"{n} image{'s' if n != 1 else ''}")
        self.empty_hint.setVisible(n == 0)
