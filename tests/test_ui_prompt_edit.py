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


def test_a_200_kb_pasted_prompt_is_cut_with_a_notice_and_long_words_wrap_cheaply(qtbot):
    from PySide6.QtGui import QGuiApplication, QTextOption

    box = PromptEdit()
    qtbot.addWidget(box)
    box.resize(300, 70)
    box.show()
    QGuiApplication.clipboard().setText("a" * 200_000)  # one word: Qt wrapped it in ~15 s before the cap
    box.setFocus()
    with qtbot.waitSignal(box.capped) as signal:
        QTest.keyClick(box, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert signal.args == [200_000]
    assert len(box.toPlainText()) == PromptEdit.MAX_CHARS
    assert box.wordWrapMode() == QTextOption.WrapMode.WrapAnywhere  # word-boundary wrapping of it is quadratic
    with qtbot.waitSignal(box.capped):
        QTest.keyClicks(box, "b")  # full: a key adds nothing and says why
    assert len(box.toPlainText()) == PromptEdit.MAX_CHARS
    box.setPlainText("red heart, " * 10)
    assert box.wordWrapMode() == QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere


def test_a_restored_prompt_over_the_cap_is_cut_and_the_panel_says_so(qtbot):
    from studio.state.panel_values import PanelValues
    from studio.ui.prompt_panel import PromptPanel

    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_values(PanelValues(prompt="x" * 300_000, negative_prompt="y" * 25_000))
    assert len(panel.values().prompt) == len(panel.values().negative_prompt) == PromptEdit.MAX_CHARS
    assert "cut to 20,000 characters" in panel.message.text() and panel.message.isVisibleTo(panel)
