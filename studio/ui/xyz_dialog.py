"""The X/Y/Z plot dialog: up to three axes (a setting and its values), the number of images, errors inline."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ..state.panel_values import PanelValues
from ..state.xyz_axes import AXIS_KINDS, NOTHING, AxisChoices, AxisError, AxisKind, axis_kind
from ..state.xyz_plot import LETTERS, Plot, build_plot

SYNTAX_TIP = ("Values separated by commas; quote a value that holds a comma.\n"
              "Ranges: 1-5 is 1, 2, 3, 4, 5;  1-5 (+2) is 1, 3, 5;  1-10 [5] is five values from 1 to 10.\n"
              "Prompt S/R: the first value is the text in the prompt that each value replaces.\n"
              "Seed -1 draws a random seed.")


def current_value(kind: AxisKind, values: PanelValues, choices: AxisChoices) -> str:
    """The panel's setting for ``kind``, as the values box shows it in its hint."""
    if kind.name == "Seed":
        return "random" if values.seed_mode == "random" else str(values.seed)
    if kind.name == "Sampler":
        return dict(choices.samplers).get(values.sampler, values.sampler)
    if kind.name == "Model":
        return dict(choices.models).get(values.model, values.model or "the default model")
    if kind.name == "Prompt S/R":
        words = values.prompt.split()
        return f"e.g. {words[0]}, …  (the first value is searched in the prompt)" if words else "text in the prompt"
    if kind.name == "Size":
        return f"{values.width}x{values.height}"
    field = kind.fields[0]
    value = getattr(values, field)
    return f"{value:g}" if isinstance(value, float) else str(value)


def example(kind: AxisKind, choices: AxisChoices) -> str:
    if kind.value_type == "int":
        return "10, 20, 30  or  10-30 (+10)"
    if kind.value_type == "float":
        return "1, 3, 5  or  1-5 [3]" if (kind.hi or 2) > 1 else "0, 0.5, 1  or  0-1 [3]"
    if kind.value_type == "size":
        return "64x64, 96x64"
    names = {"sampler": [label for _, label in choices.samplers], "spacing": list(choices.spacings),
             "model": [label for _, label in choices.models]}.get(kind.value_type, [])
    return ", ".join(names[:3]) if names else ""


class XyzDialog(QDialog):
    """Emits ``run_requested(Plot)`` from Run; the rows it was opened with come back from ``rows()``."""

    run_requested = Signal(object)

    def __init__(self, values: PanelValues, choices: AxisChoices, rows: list[tuple[str, str]] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("X/Y/Z plot")
        self.setObjectName("xyzDialog")
        self.values = values
        self.choices = choices
        self.types: list[QComboBox] = []
        self.edits: list[QLineEdit] = []
        grid = QGridLayout()
        grid.setColumnStretch(2, 1)
        for row, letter in enumerate(LETTERS):
            combo = QComboBox()
            combo.setObjectName(f"xyz{letter}Type")
            combo.addItems([NOTHING, *(k.name for k in AXIS_KINDS)])
            edit = QLineEdit()
            edit.setObjectName(f"xyz{letter}Values")
            edit.setToolTip(SYNTAX_TIP)
            edit.setMinimumWidth(320)
            grid.addWidget(QLabel(f"{letter}"), row, 0)
            grid.addWidget(combo, row, 1)
            grid.addWidget(edit, row, 2)
            self.types.append(combo)
            self.edits.append(edit)
        self.count = QLabel()
        self.count.setObjectName("xyzCount")
        self.error = QLabel()
        self.error.setObjectName("xyzError")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.run_button = self.buttons.addButton("Run", QDialogButtonBox.ButtonRole.AcceptRole)
        self.run_button.setObjectName("xyzRun")
        self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.buttons.accepted.connect(self._run)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.count)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        for i, (type_name, text) in enumerate((rows or [])[:3]):
            try:
                kind = axis_kind(type_name)
            except ValueError:
                kind = None
            self.types[i].setCurrentText(kind.name if kind else NOTHING)
            self.edits[i].setText(text)
        for combo, edit in zip(self.types, self.edits, strict=True):
            combo.currentIndexChanged.connect(self._update)
            edit.textChanged.connect(self._update)
        self._update()
        first = next((e for e in self.edits if e.isEnabled()), self.types[0])
        first.setFocus()

    def rows(self) -> list[tuple[str, str]]:
        return [(c.currentText(), e.text()) for c, e in zip(self.types, self.edits, strict=True)]

    def plot(self) -> Plot:
        """The plot the rows describe (raises AxisError)."""
        v = self.values
        return build_plot(self.rows(), self.choices, v.prompt, v.negative_prompt, (v.width, v.height))

    def _update(self) -> None:
        for combo, edit in zip(self.types, self.edits, strict=True):
            kind = axis_kind(combo.currentText())
            edit.setEnabled(kind is not None)
            edit.setPlaceholderText("" if kind is None else
                                    f"now {current_value(kind, self.values, self.choices)}  ·  "
                                    f"{example(kind, self.choices)}".rstrip(" ·"))
            edit.setStyleSheet("")
        empty = [letter for letter, combo, edit in zip(LETTERS, self.types, self.edits, strict=True)
                 if axis_kind(combo.currentText()) is not None and not edit.text().strip()]
        if empty:  # not yet typed: a hint, not an error
            self.count.setText("cells: –")
            self._say(f"Type the {empty[0]} values.", error=False)
            self.run_button.setEnabled(False)
            return
        try:
            plot = self.plot()
        except AxisError as exc:
            self.count.setText("cells: –")
            self._say(str(exc), error=True)
            self.run_button.setEnabled(False)
            edit = self.edits[LETTERS.index(exc.letter)]
            if edit.isEnabled() and edit.text().strip():
                edit.setStyleSheet("border: 1px solid #d04040;")
            return
        nx, ny, nz = plot.shape
        shape = " × ".join(str(n) for n, a in zip(plot.shape, plot.axes, strict=True) if a is not None)
        self.count.setText(f"cells: {plot.cell_count}" + (f"  ({shape})" if (nx, ny, nz).count(1) < 2 else ""))
        self.error.clear()
        self.error.hide()
        self.run_button.setEnabled(True)

    def _say(self, text: str, error: bool) -> None:
        self.error.setText(text)
        self.error.setStyleSheet("color: #d04040;" if error else "")
        self.error.show()

    def _run(self) -> None:
        try:
            plot = self.plot()
        except AxisError as exc:  # Run is disabled while the rows are wrong; this only guards a race
            self.error.setText(str(exc))
            return
        self.run_requested.emit(plot)
        self.accept()
