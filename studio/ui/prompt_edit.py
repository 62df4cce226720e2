"""The prompt boxes: plain text with AUTOMATIC1111's Ctrl+Up / Ctrl+Down emphasis keys, and a length cap.

A 200 KB prompt froze the window for seconds: Qt lays a paragraph out again on every change,
and a long run without spaces is wrapped in time that grows with the square of its length
(40,000 characters took 0.7 s, 200,000 took 15 s). So a prompt is capped at MAX_CHARS (text
encoders read a few hundred tokens; A1111 prompts of 5,000 characters are already rare), a paste
or a restored value beyond it is cut with a ``capped`` signal for the panel's notice, and a
word too long to wrap at spaces is wrapped anywhere.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QFocusEvent, QKeyEvent, QTextCursor, QTextOption
from PySide6.QtWidgets import QPlainTextEdit, QWidget

from ..state.emphasis_edit import adjust_emphasis
from ..state.panel_limits import MAX_PROMPT_CHARS
from ..state.prompt_snippets import insert_snippet

EMPHASIS_TIP = ("Ctrl+Up / Ctrl+Down: more or less attention to the selected words, as (words:1.1), "
                "or a <lora:name:1> tag's weight")
LONG_WORD = re.compile(r"\S{200}")  # a run this long wraps anywhere: word-boundary wrapping of it is quadratic


class PromptEdit(QPlainTextEdit):
    MAX_CHARS = MAX_PROMPT_CHARS
    capped = Signal(int)  # the length the text would have had
    focused = Signal()  # the pickers put an embedding into the prompt box used last

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)  # Tab moves on to the next setting, as in every form
        self._long_words = False
        self.textChanged.connect(self._check_wrapping)

    def setPlainText(self, text: str) -> None:  # noqa: N802 (Qt override)
        """Set the text, cut to MAX_CHARS (with ``capped``): restored settings may come from any file."""
        if len(text) > self.MAX_CHARS:
            original = len(text)
            text = text[: self.MAX_CHARS]
            self._wrap_for(text)  # before the layout: the cut text may still hold a long word
            super().setPlainText(text)
            self.capped.emit(original)
            return
        self._wrap_for(text)
        super().setPlainText(text)

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 (Qt override: paste, drop)
        if source.hasText():
            self.insertPlainText(source.text())
        else:
            super().insertFromMimeData(source)

    def insertPlainText(self, text: str) -> None:  # noqa: N802 (Qt override)
        """Insert at the cursor, cut to what fits under MAX_CHARS (with ``capped``)."""
        cursor = self.textCursor()
        room = self.MAX_CHARS - (self.document().characterCount() - 1) + len(cursor.selectedText())
        if len(text) > room:
            self.capped.emit(self.document().characterCount() - 1 - len(cursor.selectedText()) + len(text))
            text = text[: max(0, room)]
        self._wrap_for(self.toPlainText() + text)
        cursor.insertText(text)
        self.ensureCursorVisible()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key, mods = event.key(), event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods == Qt.KeyboardModifier.ControlModifier and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.adjust_emphasis(up=key == Qt.Key.Key_Up)
            event.accept()
            return
        full = self.document().characterCount() - 1 >= self.MAX_CHARS and not self.textCursor().hasSelection()
        if full and event.text() and event.text().isprintable():
            self.capped.emit(self.MAX_CHARS + 1)
            event.accept()
            return
        super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt override)
        super().focusInEvent(event)
        self.focused.emit()

    def insert_snippet(self, snippet: str) -> None:
        """Put a picked LoRA tag or embedding name at the cursor (or after the text), as one undoable edit."""
        cursor = self.textCursor()
        text = self.toPlainText()
        new, at = insert_snippet(text, cursor.selectionStart(), cursor.selectionEnd(), snippet)
        if len(new) > self.MAX_CHARS:
            self.capped.emit(len(new))
            return
        self._replace_all(cursor, new)
        cursor.setPosition(at)
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    def _replace_all(self, cursor: QTextCursor, text: str) -> None:
        # Through the cursor, one edit block: setPlainText would clear the undo history.
        self._wrap_for(text)
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()

    def adjust_emphasis(self, up: bool) -> None:
        cursor = self.textCursor()
        text = self.toPlainText()
        new, start, end = adjust_emphasis(text, cursor.selectionStart(), cursor.selectionEnd(), up)
        if new == text:
            return
        self._replace_all(cursor, new)
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)

    def _check_wrapping(self) -> None:
        self._wrap_for(self.toPlainText())

    def _wrap_for(self, text: str) -> None:
        long_words = LONG_WORD.search(text) is not None
        if long_words != self._long_words:
            self._long_words = long_words
            self.setWordWrapMode(QTextOption.WrapMode.WrapAnywhere if long_words
                                 else QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
