"""The prompt boxes: plain text with AUTOMATIC1111's Ctrl+Up / Ctrl+Down emphasis keys."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from ..state.emphasis_edit import adjust_emphasis

EMPHASIS_TIP = "Ctrl+Up / Ctrl+Down: more or less attention to the selected words, as (words:1.1)"


class PromptEdit(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)  # Tab moves on to the next setting, as in every form

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods == Qt.KeyboardModifier.ControlModifier and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.adjust_emphasis(up=key == Qt.Key.Key_Up)
            event.accept()
            return
        super().keyPressEvent(event)

    def adjust_emphasis(self, up: bool) -> None:
        cursor = self.textCursor()
        text = self.toPlainText()
        new, start, end = adjust_emphasis(text, cursor.selectionStart(), cursor.selectionEnd(), up)
        if new == text:
            return
        # One undoable edit: replace the whole text through the cursor (setPlainText would clear undo).
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(new)
        cursor.endEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
