"""The prompt box's Ctrl+Up / Ctrl+Down emphasis keys, through real key presses."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest

from studio.ui.prompt_edit import PromptEdit


def test_ctrl_up_and_down_edit_emphasis_and_undo_restores(qtbot):
    box = PromptEdit()
    qtbot.addWidget(box)
    box.setPlainText("a red apple")
    cursor = box.textCursor()
    cursor.setPosition(2)
    cursor.setPosition(5, QTextCursor.MoveMode.KeepAnchor)
    box.setTextCursor(cursor)
    QTest.keyClick(box, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(box, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert box.toPlainText() == "a (red:1.2) apple"
    assert box.textCursor().selectedText() == "red"
    QTest.keyClick(box, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert box.toPlainText() == "a (red:1.1) apple"
    box.undo()
    assert box.toPlainText() == "a (red:1.2) apple"
    QTest.keyClick(box, Qt.Key.Key_Up)  # a plain arrow still moves the cursor
    assert box.toPlainText() == "a (red:1.2) apple"
