"""The window's shortcuts win over the focused widget's own key bindings.

Before Qt runs a shortcut it asks the focused widget (a ShortcutOverride event) whether it wants the key
as typing. Line edits claim the emacs-style keys of the X11 key scheme: in a spin box Ctrl+E means "end of
line", so Export never ran while a spin box had focus. This filter answers that question for the window's
own shortcuts before the widget does. Undo, redo and the canvas keys are left to the focused widget (they
are not WindowShortcut actions): in the prompt box Ctrl+Z undoes typing.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QWidget


class WindowShortcuts(QObject):
    def __init__(self, window: QWidget):
        super().__init__(window)
        self._window = window
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)  # removed by Qt when this object (a child of the window) goes

    def _window_keys(self) -> set[QKeySequence]:
        return {sequence for action in self._window.actions()
                if action.isEnabled() and action.shortcutContext() == Qt.ShortcutContext.WindowShortcut
                for sequence in action.shortcuts()}

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() != QEvent.Type.ShortcutOverride or not isinstance(watched, QWidget):
            return False
        if watched.window() is not self._window or not isinstance(event, QKeyEvent):
            return False
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        pressed = QKeySequence(event.key() | modifiers.value)
        if pressed not in self._window_keys():
            return False
        _commit_typing(watched)
        # Consumed without being accepted: the widget never claims the key, so Qt runs the window's shortcut.
        return True


def _commit_typing(widget: QWidget) -> None:
    """A number being typed counts before the shortcut runs: the panel's boxes take a value only when
    typing ends (no keyboard tracking), so Ctrl+Enter right after typing 400 in Steps would use the old one."""
    box = widget if isinstance(widget, QAbstractSpinBox) else widget.parentWidget()
    if isinstance(box, QAbstractSpinBox):
        box.interpretText()
