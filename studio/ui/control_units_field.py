"""The panel's ControlNet units: one row of the field table (``controlnets``) holding up to three units.

Each unit is a check box (on/off), a model picker filled from the engine's catalog, a preprocessor
and weight, start and end. A unit that is off shows only its check box, and a unit after one that
is off and unused stays hidden, so the group takes two lines until ControlNet is used. Every unit
reads its control image from the canvas's control layer.
"""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtCore import Signal, SignalInstance
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QVBoxLayout, QWidget

from ..state.control_units import CONTROL_PREPROCESSORS, CONTROL_RANGES, CONTROL_UNITS, ControlSettings
from .panel_boxes import DecimalBox, FocusCombo
from .panel_fields import PanelField

PREPROCESSOR_LABELS = {
    "none": "None (as drawn)",
    "canny": "Canny edges",
    "scribble": "Scribble",
    "scribble_xdog": "Scribble (XDoG)",
    "invert": "Invert",
    "lineart_strokes": "Lineart (strokes)",
}
NO_CONTROLNET_TIP = ("No ControlNet found: put ControlNet models in models/ControlNet (AUTOMATIC1111) or "
                     "models/controlnet (ComfyUI) beside your checkpoints, or in a folder set in Settings")


class ModelCombo(FocusCombo):
    """The ControlNet picker; ``opened`` as its list drops down, so the engine can look for new files."""

    opened = Signal()

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self.opened.emit()
        super().showPopup()


class ControlUnitBox(QWidget):
    """The widgets of one unit, named ``controlnet_<n>_<setting>`` for tests and error outlines."""

    def __init__(self, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.number = number
        self.enabled = QCheckBox(f"Unit {number}")
        self.enabled.setToolTip("Steer the image with the control layer through a ControlNet")
        self.model = ModelCombo()
        self.model.setPlaceholderText("Choose a ControlNet")
        self.model.setMinimumContentsLength(10)
        self.model.setSizeAdjustPolicy(FocusCombo.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setToolTip("The ControlNet model (found in your ControlNet folders)")
        self.preprocessor = FocusCombo()
        for key in CONTROL_PREPROCESSORS:
            self.preprocessor.addItem(PREPROCESSOR_LABELS.get(key, key), key)
        self.preprocessor.setToolTip("What turns the control layer into the map the ControlNet reads: as drawn, "
                                     "Canny edges of a loaded picture, a scribble, inverted lines…")
        weight, start, end = (CONTROL_RANGES[name] for name in ("weight", "start", "end"))
        self.weight = DecimalBox(float(weight.lo), float(weight.hi), 0.05, 2)
        self.weight.setToolTip("How strongly the ControlNet steers (1 is its full strength)")
        self.start = DecimalBox(float(start.lo), float(start.hi), 0.05, 2)
        self.start.setToolTip("The fraction of the steps where the ControlNet starts steering")
        self.end = DecimalBox(float(end.lo), float(end.hi), 0.05, 2)
        self.end.setToolTip("The fraction of the steps where it stops")
        for name in ("enabled", "model", "preprocessor", "weight", "start", "end"):
            getattr(self, name).setObjectName(f"controlnet_{number}_{name}")

        self.details = QWidget()
        grid = QGridLayout(self.details)
        grid.setContentsMargins(18, 0, 0, 4)  # under the check box's text
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(3)
        grid.addWidget(self.model, 0, 0, 1, 6)
        grid.addWidget(self.preprocessor, 1, 0, 1, 6)
        for column, (text, box) in enumerate((("Weight", self.weight), ("From", self.start), ("to", self.end))):
            label = QLabel(text)
            label.setBuddy(box)
            label.setToolTip(box.toolTip())
            grid.addWidget(label, 2, 2 * column)
            grid.addWidget(box, 2, 2 * column + 1)
            box.setMinimumWidth(52)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.enabled)
        column.addWidget(self.details)
        self.enabled.toggled.connect(self.details.setVisible)
        self.details.setVisible(False)

    def signals(self) -> tuple[SignalInstance, ...]:
        return (self.enabled.toggled, self.model.currentIndexChanged, self.preprocessor.currentIndexChanged,
                self.weight.valueChanged, self.start.valueChanged, self.end.valueChanged)

    def read(self) -> ControlSettings:
        return ControlSettings(self.enabled.isChecked(), self.model.currentData() or "",
                               self.preprocessor.currentData() or "none", self.weight.value(), self.start.value(),
                               self.end.value())

    def write(self, unit: ControlSettings) -> None:
        self.enabled.setChecked(unit.enabled)
        self.details.setVisible(unit.enabled)
        self._pick_model(unit.model)
        index = self.preprocessor.findData(unit.preprocessor)
        self.preprocessor.setCurrentIndex(max(index, 0))
        for box, value in ((self.weight, unit.weight), (self.start, unit.start), (self.end, unit.end)):
            if not math.isnan(value):
                box.setValue(value)

    def set_models(self, names: list[str]) -> None:
        keep = self.model.currentData() or ""
        self.model.clear()
        for name in names:
            self.model.addItem(name, name)
        self.model.setToolTip("The ControlNet model (found in your ControlNet folders)" if names else
                              NO_CONTROLNET_TIP)
        self._pick_model(keep)

    def _pick_model(self, name: str) -> None:
        index = self.model.findData(name)
        if index < 0 and name:
            self.model.addItem(name, name)  # not found (yet): kept, and the engine names what is missing
            index = self.model.count() - 1
        self.model.setCurrentIndex(index)

    def used(self) -> bool:
        return self.enabled.isChecked() or bool(self.model.currentData())


class ControlUnitsField(PanelField):
    """``PanelValues.controlnets``: the units, always ``CONTROL_UNITS`` of them."""

    def __init__(self, name: str, label: str, widget: QWidget, tip: str = "", **kwargs: Any) -> None:
        super().__init__(name, label, widget, tip, **kwargs)
        self.units = tuple(ControlUnitBox(n + 1) for n in range(CONTROL_UNITS))
        self.hint = QLabel("Draw on the control layer (Control above the canvas, Ctrl+L) or load an image into it "
                           "(File → Open into control layer).")
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)
        column = QVBoxLayout(widget)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        for unit in self.units:
            column.addWidget(unit)
            unit.enabled.toggled.connect(self._sync_shown)
        column.addWidget(self.hint)
        self._sync_shown()

    @property
    def outlined(self) -> tuple[QWidget, ...]:
        return tuple(unit.model for unit in self.units)

    def signals(self) -> tuple[SignalInstance, ...]:
        return tuple(signal for unit in self.units for signal in unit.signals())

    def read(self) -> tuple[ControlSettings, ...]:
        return tuple(unit.read() for unit in self.units)

    def write(self, value: tuple[ControlSettings, ...]) -> None:
        for unit, settings in zip(self.units, value, strict=False):
            unit.write(settings)
        self._sync_shown()

    def problem(self) -> str | None:
        for unit in self.units:
            problem = unit.read().problem(unit.number)
            if problem:
                return problem
        return None

    def set_available(self, available: bool) -> None:
        self.widget.setEnabled(available)

    def set_models(self, names: list[str]) -> None:
        """The ControlNets the engine found, offered in every unit's picker."""
        for unit in self.units:
            unit.set_models(names)

    def _sync_shown(self) -> None:
        """Unit n + 1 shows once unit n is in use; the hint once any unit is on."""
        previous_used = True
        for unit in self.units:
            unit.setVisible(previous_used or unit.used())
            previous_used = unit.used()
        self.hint.setVisible(any(unit.enabled.isChecked() for unit in self.units))
