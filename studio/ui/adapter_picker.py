"""The LoRA and embedding pickers beside the prompt boxes: a button that opens a searchable list of names.

The names are the files the engine found (its AdapterCatalog: the Settings folders, the usual
places and the folders beside the loaded checkpoint); opening a picker asks the engine to list
them again, so a file just copied in shows up. Picking a name emits ``picked``; the panel puts
it into a prompt box (see state/prompt_snippets.py).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QLabel, QLineEdit, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

from ..engine.adapter_names import HOME_FOLDERS, KIND_LABELS
from ..state.jobs import AdapterChoice

POPUP_SIZE = (300, 320)


class AdapterPopup(QFrame):
    """A search line over the list of names; typing filters, Enter or a click picks, Escape closes."""

    picked = Signal(str)

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.kind = kind
        self.setObjectName(f"{kind}Popup")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.resize(*POPUP_SIZE)
        label = KIND_LABELS[kind]
        self.search = QLineEdit()
        self.search.setObjectName(f"{kind}Search")
        self.search.setPlaceholderText(f"Search {label}s…")
        self.search.setClearButtonEnabled(True)
        self.list = QListWidget()
        self.list.setObjectName(f"{kind}List")
        self.empty = QLabel(f"No {label} files found. Put them in {HOME_FOLDERS[kind]} beside your checkpoints, "
                            f"or add their folder in Settings → Model folders.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._pick_current)
        self.search.installEventFilter(self)
        self.list.itemActivated.connect(self._pick)
        self.list.itemClicked.connect(self._pick)
        self.set_items(())

    def set_items(self, items: tuple[AdapterChoice, ...]) -> None:
        current = self.list.currentItem().text() if self.list.currentItem() else ""
        self.list.clear()
        for choice in items:
            item = QListWidgetItem(choice.name)
            item.setToolTip(choice.path)
            self.list.addItem(item)
        self.empty.setVisible(not items)
        self._filter(self.search.text(), keep=current)

    def names(self, visible_only: bool = True) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if not (visible_only and self.list.item(i).isHidden())]

    def open_below(self, anchor: QWidget) -> None:
        self.search.clear()
        self.move(anchor.mapToGlobal(anchor.rect().bottomLeft()))
        self.show()
        self.search.setFocus()

    def _filter(self, text: str, keep: str = "") -> None:
        words = text.lower().split()
        first = None
        for i in range(self.list.count()):
            item = self.list.item(i)
            hidden = not all(w in item.text().lower() for w in words)
            item.setHidden(hidden)
            if not hidden and (first is None or item.text() == keep):
                first = item
        self.list.setCurrentItem(first)

    def _pick_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            self._pick(item)

    def _pick(self, item: QListWidgetItem) -> None:
        self.hide()
        self.picked.emit(item.text())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        # Up and Down in the search line move through the list, so typing and picking need no mouse.
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key() if isinstance(event, QKeyEvent) else None
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
                self._step(1 if key == Qt.Key.Key_Down else -1)
                return True
        return super().eventFilter(watched, event)

    def _step(self, direction: int) -> None:
        rows = [i for i in range(self.list.count()) if not self.list.item(i).isHidden()]
        if not rows:
            return
        at = self.list.currentRow()
        later = [r for r in rows if (r > at if direction > 0 else r < at)]
        row = (later[0] if direction > 0 else later[-1]) if later else at
        self.list.setCurrentRow(row if row in rows else rows[0])


class AdapterButton(QToolButton):
    """A small button that opens the picker of one kind; ``opened`` when it does, ``picked`` with the name."""

    opened = Signal()
    picked = Signal(str)

    def __init__(self, kind: str, text: str, tip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setText(text)
        self.setToolTip(tip)
        self.setAutoRaise(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the prompt box keeps its cursor for the insertion
        self.popup = AdapterPopup(kind, self)
        self.popup.picked.connect(self.picked)
        self.clicked.connect(self.open_popup)

    def set_items(self, items: tuple[AdapterChoice, ...]) -> None:
        self.popup.set_items(items)

    def open_popup(self) -> None:
        self.opened.emit()
        self.popup.open_below(self)
