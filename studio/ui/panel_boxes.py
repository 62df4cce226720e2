"""The prompt panel's input boxes: the wheel scrolls the panel, and typing past a limit is shown, not dropped.

A plain QSpinBox or QComboBox takes every wheel event that passes over it, so scrolling a long
settings column changes whatever box comes under the cursor. These boxes take the wheel only
while they have focus (a click or Tab gives it); otherwise the event goes on to the scroll area.

A plain QSpinBox also refuses a keystroke that would leave its range: typing 4096 into a box
whose maximum is 2048 leaves 409, silently. These boxes accept any number while it is typed
(so the panel can say what the range is at once), and when editing finishes they bring it to
the nearest value they can hold: inside the range, and for sizes on the model's multiple.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator, QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QDoubleSpinBox, QSpinBox, QWidget


def _take_wheel_only_with_focus(box: QWidget) -> None:
    box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # click or Tab; never the wheel


class _WheelOnlyWithFocus:
    """Mixed in before a Qt box class: the wheel changes the box only while it has focus."""

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt override)
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()  # on to the parent: the panel's scroll area scrolls


class _BroughtIntoRange(_WheelOnlyWithFocus):
    """Mixed in before QSpinBox / QDoubleSpinBox: a number typed out of range is brought to ``nearest``
    when editing finishes. The box class gives ``_number(text) -> (value, ok)`` and ``nearest``."""

    def fixup(self, text: str) -> str:
        value, ok = self._number(_core_text(self, text))
        return self.prefix() + self.textFromValue(self.nearest(value)) + self.suffix() if ok else text


class FocusCombo(_WheelOnlyWithFocus, QComboBox):
    """A combo box that ignores the wheel unless it has focus."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _take_wheel_only_with_focus(self)


class NumberBox(_BroughtIntoRange, QSpinBox):
    """A whole-number box; ``multiple`` > 1 snaps typed values to it when editing finishes."""

    def __init__(self, lo: int, hi: int, step: int = 1, suffix: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.multiple = 1  # before setRange: Qt validates the text from there on
        self.setRange(lo, hi)
        self.setSingleStep(step)
        self.setSuffix(suffix)
        self.setKeyboardTracking(False)  # one valueChanged when typing ends, not one per digit
        self.setMinimumWidth(64)  # below the hint, which sizes for the largest value: the panel stays narrow
        _take_wheel_only_with_focus(self)

    def typed_number(self) -> float | None:
        """The number in the box's text as typed, even outside the range; None when it is not one."""
        core = _core_text(self, self.text())
        value, ok = self.locale().toLongLong(core)
        return float(value) if ok else None

    def nearest(self, number: float) -> int:
        """The value this box would hold for ``number``: in range, on the multiple."""
        value = min(max(round(number), self.minimum()), self.maximum())
        if self.multiple > 1:
            value = max(self.multiple, round(value / self.multiple) * self.multiple)
            while value > self.maximum():
                value -= self.multiple
        return value

    def validate(self, text: str, pos: int) -> object:
        state, text, pos = super().validate(text, pos)
        if state == QValidator.State.Invalid and self.locale().toLongLong(_core_text(self, text))[1]:
            state = QValidator.State.Intermediate  # a number out of range: kept, shown as an error, fixed up
        elif state == QValidator.State.Acceptable and self.multiple > 1:
            value, _ = self.locale().toLongLong(_core_text(self, text))
            if value % self.multiple:
                state = QValidator.State.Intermediate  # snapped by fixup when editing finishes
        return state, text, pos

    def _number(self, core: str) -> tuple[int, bool]:
        return self.locale().toLongLong(core)


class DecimalBox(_BroughtIntoRange, QDoubleSpinBox):
    """A decimal box; out-of-range typing is kept until editing finishes, then brought into range."""

    def __init__(self, lo: float, hi: float, step: float, decimals: int = 2, suffix: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(decimals)
        self.setRange(lo, hi)
        self.setSingleStep(step)
        self.setSuffix(suffix)
        self.setKeyboardTracking(False)
        self.setMinimumWidth(64)
        self.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        _take_wheel_only_with_focus(self)

    def typed_number(self) -> float | None:
        value, ok = self.locale().toDouble(_core_text(self, self.text()))
        return value if ok else None

    def nearest(self, number: float) -> float:
        return min(max(number, self.minimum()), self.maximum())

    def validate(self, text: str, pos: int) -> object:
        state, text, pos = super().validate(text, pos)
        if state == QValidator.State.Invalid:
            value, ok = self.locale().toDouble(_core_text(self, text))
            if ok and not (self.minimum() <= value <= self.maximum()):
                state = QValidator.State.Intermediate
        return state, text, pos

    def _number(self, core: str) -> tuple[float, bool]:
        return self.locale().toDouble(core)


def _core_text(box: QAbstractSpinBox, text: str) -> str:
    """The number part of a spin box's text: without prefix, suffix and surrounding spaces."""
    if box.prefix() and text.startswith(box.prefix()):
        text = text[len(box.prefix()):]
    if box.suffix() and text.endswith(box.suffix()):
        text = text[: -len(box.suffix())]
    return text.strip()
