"""The prompt panel's field table: every PanelValues field, its widget, and how it is read, written and checked.

One row per field (``build_fields``). Each widget is named after its field, which is also the
GenerationRequest field of the same meaning, so an engine error's ``field`` finds the widget to
outline. Reading, writing, the model-dependent enabling and the checks while typing all go
through these rows: a new setting is one new row (and its place in the panel's layout).
Ranges come from studio/state/panel_limits.py, the table every loader also brings values into.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QCheckBox, QComboBox, QWidget

from ..engine.hires_settings import LATENT_UPSCALERS, PIXEL_UPSCALERS
from ..state.panel_limits import INPAINT_AREAS, MASKED_CONTENTS, PANEL_LIMITS, Range
from ..state.panel_values import NON_KARRAS_SPACING, SEED_MODES
from .panel_boxes import DecimalBox, FocusCombo, NumberBox
from .prompt_edit import EMPHASIS_TIP, PromptEdit

SEED_MODE_LABELS = {"fixed": "Fixed", "random": "Random", "reuse": "Reuse last"}
INPAINT_AREA_LABELS = {"whole": "Whole picture", "masked": "Only masked"}
MASKED_CONTENT_LABELS = {"original": "Original", "fill": "Fill", "latent_noise": "Latent noise",
                         "latent_nothing": "Latent nothing"}
NO_REFINER = "None"
DEFAULT_INTERVAL = (0.3, 10.0)  # shown while the interval is off: a range that suits most models
DEFAULT_THRESHOLD = 0.995  # Imagen's percentile
DEFAULT_HIRES_SCALE = 2.0  # shown while hires fix is off
HIRES_UPSCALERS = (*LATENT_UPSCALERS, *PIXEL_UPSCALERS)  # always offered; the engine's upscaler files follow


class PanelField:
    """One PanelValues field bound to its widget.

    ``needs`` names a ModelChoice flag (``has_classifier``, ``clip_skip``) without which the
    field is disabled and read as ``off_value`` (the value is kept for a model that has it).
    ``follows`` is (another field, a test of its value): while the test fails the widget is
    disabled, as it means nothing then (the padding of "only masked" inpainting with "whole
    picture"), but its value is still read and kept."""

    def __init__(self, name: str, label: str, widget: QWidget, tip: str = "", *, needs: str | None = None,
                 off_value: Any = None, off_tip: str = "",
                 follows: tuple[str, Callable[[Any], bool]] | None = None) -> None:
        self.name = name
        self.label = label
        self.widget = widget
        self.needs = needs
        self.follows = follows
        self.off_value = off_value
        self.tip = tip
        self.off_tip = off_tip
        widget.setObjectName(name)
        widget.setToolTip(tip)

    @property
    def outlined(self) -> tuple[QWidget, ...]:
        """The widgets outlined when this field is in error."""
        return (self.widget,)

    def signals(self) -> tuple[SignalInstance, ...]:
        """Emitted when the field's value changes."""
        raise NotImplementedError

    def read(self) -> Any:
        raise NotImplementedError

    def write(self, value: Any) -> None:
        raise NotImplementedError

    def problem(self) -> str | None:
        """What is wrong with the value as it stands in the widget (while typing too); None when it can run."""
        return None

    def set_available(self, available: bool) -> None:
        for widget in self.outlined:
            widget.setEnabled(available)
        self.widget.setToolTip(self.tip if available or not self.off_tip else self.off_tip)


class TextField(PanelField):
    widget: PromptEdit

    def signals(self) -> tuple[SignalInstance, ...]:
        return (self.widget.textChanged,)

    def read(self) -> str:
        return self.widget.toPlainText()

    def write(self, value: str) -> None:
        if self.widget.toPlainText() != value:
            self.widget.setPlainText(value)


class ChoiceField(PanelField):
    """A combo box of (label, key) items. A key not offered (yet) is kept: until the engine reports
    its models and samplers the box is empty, and a saved choice must survive that."""

    widget: QComboBox

    def __init__(self, *args: Any, keep_unknown: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_unknown = keep_unknown
        self.pending = ""

    def signals(self) -> tuple[SignalInstance, ...]:
        return (self.widget.currentIndexChanged,)

    def read(self) -> str:
        data = self.widget.currentData()
        return data if isinstance(data, str) and self.widget.currentIndex() >= 0 else self.pending

    def write(self, value: str) -> None:
        combo = self.widget
        self.pending = value if self.keep_unknown else ""
        if combo.count() == 0:  # nothing offered yet: the placeholder shows
            combo.setCurrentIndex(-1)
            return
        index = combo.findData(value)
        if index < 0 and value and self.keep_unknown:
            combo.addItem(value, value)  # unknown until the engine reports; kept so the value survives
            index = combo.count() - 1
        if index >= 0:
            combo.setCurrentIndex(index)

    def set_items(self, items: list[tuple[str, str]]) -> None:
        """Offer (label, key) items; the selection is put back by the next ``write``."""
        self.widget.clear()
        for label, key in items:
            self.widget.addItem(label, key)


class FlagField(PanelField):
    """A check box standing for one value of a text field (Karras spacing); unchecked keeps the other value."""

    widget: QCheckBox

    def __init__(self, *args: Any, on_value: str, unchecked_value: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_value = on_value
        self.unchecked_value = unchecked_value

    def signals(self) -> tuple[SignalInstance, ...]:
        return (self.widget.toggled,)

    def read(self) -> str:
        return self.on_value if self.widget.isChecked() else self.unchecked_value

    def write(self, value: str) -> None:
        if value != self.on_value:
            self.unchecked_value = value  # e.g. "trailing" from a PNG: kept, not turned into "leading"
        self.widget.setChecked(value == self.on_value)


class NumberField(PanelField):
    """A number in a NumberBox or DecimalBox, kept inside its range."""

    widget: NumberBox | DecimalBox

    def __init__(self, *args: Any, limit: Range, unit: str = "", snaps: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limit = limit
        self.unit = unit
        self.snaps = snaps  # a size: on the model's multiple (NumberBox.multiple, set by the panel)

    def signals(self) -> tuple[SignalInstance, ...]:
        return (self.widget.valueChanged,)

    def read(self) -> int | float:
        return self.widget.value()

    def write(self, value: int | float) -> None:
        if isinstance(value, float) and math.isnan(value):
            return  # the loaders refuse NaN; a widget cannot show it either
        self.widget.setValue(_within(value, self.limit))

    def range_text(self) -> str:
        box = self.widget
        return f"{self.label} takes {_number(box.minimum())} to {_number(box.maximum())}{self.unit}"

    def problem(self) -> str | None:
        box = self.widget
        typed = box.typed_number()
        if typed is not None and typed > box.maximum():  # below the minimum may still be on its way (4 → 40)
            return f"{self.range_text()}: {_number(typed)} is too large."
        multiple = getattr(box, "multiple", 1)
        if self.snaps and multiple > 1 and box.value() % multiple:
            return f"{self.label} must be a multiple of {multiple}{self.unit} for this model."
        return None

    def adjustment(self, typed: float | None) -> str | None:
        """A notice when editing finished on a value the box had to change (out of range, off the multiple)."""
        value = self.widget.value()
        if typed is None or typed == value:
            return None
        box = self.widget
        if typed > box.maximum():
            why = f"the largest is {_number(box.maximum())}{self.unit}"
        elif typed < box.minimum():
            why = f"the smallest is {_number(box.minimum())}{self.unit}"
        else:
            why = f"sizes are multiples of {getattr(box, 'multiple', 1)}{self.unit} for this model"
        return f"{self.label} {_number(typed)}{self.unit} became {_number(value)}{self.unit}: {why}."


class OptionalField(PanelField):
    """A check box that switches a setting on, with the boxes that hold its value; off reads as None.

    ``widget`` is the row that holds them (named after the field); ``boxes`` are outlined on error."""

    def __init__(self, *args: Any, check: QCheckBox, boxes: tuple[DecimalBox, ...], limit: Range,
                 shown_when_off: tuple[float, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.check = check
        self.boxes = boxes
        self.limit = limit
        self.shown_when_off = shown_when_off
        for i, box in enumerate(boxes):
            box.setObjectName(f"{self.name}_{i}")
        check.setObjectName(f"{self.name}_on")
        check.toggled.connect(self._sync_boxes)
        self._available = True
        self._sync_boxes()

    @property
    def outlined(self) -> tuple[QWidget, ...]:
        return self.boxes

    def signals(self) -> tuple[SignalInstance, ...]:
        return (self.check.toggled, *(box.valueChanged for box in self.boxes))

    def read(self) -> Any:
        if not self.check.isChecked():
            return None
        numbers = tuple(box.value() for box in self.boxes)
        return numbers if len(numbers) > 1 else numbers[0]

    def write(self, value: Any) -> None:
        self.check.setChecked(value is not None)
        if value is None:
            numbers = self.shown_when_off
        else:
            numbers = tuple(value) if isinstance(value, tuple | list) else (value,)
        for box, number in zip(self.boxes, numbers, strict=False):
            if not (isinstance(number, float) and math.isnan(number)):
                box.setValue(_within(number, self.limit))

    def problem(self) -> str | None:
        if self.check.isChecked() and len(self.boxes) == 2 and self.boxes[0].value() >= self.boxes[1].value():
            return f"{self.label}: the low end must be below the high end."
        return None

    def set_available(self, available: bool) -> None:
        self._available = available
        self.check.setEnabled(available)
        self._sync_boxes()

    def _sync_boxes(self) -> None:
        for box in self.boxes:
            box.setEnabled(self._available and self.check.isChecked())


def _within(value: int | float, limit: Range) -> int | float:
    """``value`` inside ``limit`` without the multiple: a size the model's multiple decides is left to the check."""
    bounded = Range(limit.lo, limit.hi).bound(value)
    return int(bounded) if limit.is_int else float(bounded)


def _number(value: float) -> str:
    if isinstance(value, float) and (not value.is_integer() or abs(value) >= 1e15):
        return f"{value:g}"  # 1e+300, inf, 0.75
    return f"{int(value)}"


def _combo(labels: dict[str, str], keys: tuple[str, ...]) -> FocusCombo:
    combo = FocusCombo()
    for key in keys:
        combo.addItem(labels[key], key)
    return combo


def build_fields() -> dict[str, PanelField]:
    """The table: one row per PanelValues field, widgets made here (the panel lays them out)."""
    from .control_units_field import ControlUnitsField  # it builds on PanelField, defined above
    limit = PANEL_LIMITS

    def number(name: str, label: str, tip: str, *, step: float = 1, decimals: int = 0, unit: str = "",
               snaps: bool = False, **kwargs: Any) -> NumberField:
        rng = limit[name]
        if rng.is_int:
            box: NumberBox | DecimalBox = NumberBox(int(rng.lo), int(rng.hi), int(step), unit)
        else:
            box = DecimalBox(float(rng.lo), float(rng.hi), step, decimals, unit)
        return NumberField(name, label, box, tip, limit=rng, unit=unit, snaps=snaps, **kwargs)

    seed_mode = _combo(SEED_MODE_LABELS, SEED_MODES)
    inpaint_area = _combo(INPAINT_AREA_LABELS, INPAINT_AREAS)
    masked_content = _combo(MASKED_CONTENT_LABELS, MASKED_CONTENTS)
    refiner = FocusCombo()
    refiner.addItem(NO_REFINER, "")  # the refiners found come with the engine's catalog
    model = FocusCombo()
    model.setPlaceholderText("Loading models…")
    sampler = FocusCombo()
    sampler.setPlaceholderText("Loading…")
    interval_check = QCheckBox("σ from")
    interval_check.setToolTip("Apply guidance only for noise levels σ in this range (Kynkäänniemi et al. 2024)")
    sigma = limit["guidance_interval"]
    interval_boxes = (DecimalBox(float(sigma.lo), float(sigma.hi), 0.1, 2),
                      DecimalBox(float(sigma.lo), float(sigma.hi), 0.5, 2))
    threshold_check = QCheckBox("Percentile")
    threshold_check.setToolTip("Dynamic thresholding (Saharia et al. 2022): clip each step's image prediction "
                               "at this percentile of its values; helps at high CFG")
    percentile = limit["dynamic_threshold"]
    threshold_box = DecimalBox(float(percentile.lo), float(percentile.hi), 0.005, 3)
    hires_check = QCheckBox("Upscale by")
    hires_check.setToolTip("Draw at the model's size, make it larger, then denoise it again at the larger size "
                           "(AUTOMATIC1111's hires fix): more detail than drawing large at once")
    factor = limit["hires_scale"]
    hires_box = DecimalBox(float(factor.lo), float(factor.hi), 0.25, 2, "×")
    upscaler = FocusCombo()
    for name in HIRES_UPSCALERS:
        upscaler.addItem(name, name)
    hires_on = ("hires_scale", lambda scale: scale is not None)

    rows: list[PanelField] = [
        TextField("prompt", "Prompt", PromptEdit(), EMPHASIS_TIP),
        TextField("negative_prompt", "Negative prompt", PromptEdit(), EMPHASIS_TIP),
        ChoiceField("model", "Model", model, "The model that draws the image"),
        ChoiceField("sampler", "Sampler", sampler, "How the noise is removed, step by step"),
        FlagField("spacing", "Karras spacing", QCheckBox("Karras spacing"),
                  "Space the noise levels as Karras et al. (2022): more steps at low noise",
                  on_value="karras", unchecked_value=NON_KARRAS_SPACING),
        number("steps", "Steps", "Denoising steps: more is slower and usually cleaner"),
        number("cfg_scale", "CFG scale", "Classifier-free guidance: how strongly the image follows the prompt "
               "(1 = off)", step=0.5, decimals=1),
        number("distilled_cfg", "Distilled CFG", "The guidance strength Flux dev reads as an input (Forge's "
               "Distilled CFG Scale): 3.5 for most pictures, 30 for Flux Fill; CFG stays 1", step=0.5, decimals=1,
               needs="distilled_guidance", off_value=3.5),
        number("guidance_rescale", "Rescale", "Guidance rescale (Lin et al. 2023): tames over-saturation at "
               "high CFG; 0 = off", step=0.05, decimals=2),
        OptionalField("guidance_interval", "Guidance interval", QWidget(),
                      "Apply classifier-free guidance only between these noise levels", check=interval_check,
                      boxes=interval_boxes, limit=sigma, shown_when_off=DEFAULT_INTERVAL),
        OptionalField("dynamic_threshold", "Dynamic threshold", QWidget(),
                      "Dynamic thresholding: clip the image prediction at a percentile of its values",
                      check=threshold_check, boxes=(threshold_box,), limit=percentile,
                      shown_when_off=(DEFAULT_THRESHOLD,)),
        number("classifier_scale", "Classifier", "Classifier guidance scale: steer towards the prompt's class "
               "with the model's noisy classifier", step=0.5, decimals=1, needs="has_classifier", off_value=0.0,
               off_tip="This model has no classifier"),
        number("clip_skip", "Clip skip", "Read the CLIP text encoder this many layers from its end (2 suits many "
               "anime-style SD 1.5 models)", needs="clip_skip", off_value=1,
               off_tip="Only Stable Diffusion 1.x and 2.x models read CLIP layers this way"),
        number("seed", "Seed", "The noise seed: the same seed and settings give the same image"),
        ChoiceField("seed_mode", "Seed mode", seed_mode, "Fixed: this seed; Random: a new one each time (the box "
                    "shows the last one used); Reuse last: the last image's seed", keep_unknown=False),
        number("variation_seed", "Variation seed", "A second seed whose noise the image moves toward by the "
               "variation strength: small strengths give variations of the same picture"),
        number("variation_strength", "Variation strength", "How far the start noise moves from the seed's toward "
               "the variation seed's: 0 is the seed's image, 1 the variation seed's", step=0.05, decimals=2),
        number("width", "Width", "Image width", step=8, unit=" px", snaps=True),
        number("height", "Height", "Image height", step=8, unit=" px", snaps=True),
        number("strength", "Strength", "How much of the canvas image to repaint: 1 ignores it, lower keeps more "
               "of it", step=0.05, decimals=2),
        number("mask_feather", "Mask feather", "Soften the mask edge by this many pixels", unit=" px"),
        number("batch_count", "Batch count", "How many images to queue, each with its own seed"),
        ChoiceField("inpaint_area", "Inpaint area", inpaint_area, "With a painted mask: repaint it within the "
                    "whole picture, or only the masked part, cut out with some padding and drawn at the model's "
                    "size, then pasted back (a small edit of a large image costs a small run)", keep_unknown=False),
        number("inpaint_padding", "Padding", "Only masked: pixels of the picture kept around the mask, which the "
               "model sees to match the surroundings", unit=" px", step=8,
               follows=("inpaint_area", lambda area: area == "masked")),
        ChoiceField("masked_content", "Masked content", masked_content, "With a painted mask, what the masked "
                    "part starts from: the original picture, its surrounding colours (fill), fresh noise, or "
                    "nothing (an empty latent)", keep_unknown=False),
        OptionalField("hires_scale", "Hires fix", QWidget(), "Hires fix: a second pass at this many times the "
                      "size", check=hires_check, boxes=(hires_box,), limit=factor,
                      shown_when_off=(DEFAULT_HIRES_SCALE,)),
        ChoiceField("hires_upscaler", "Upscaler", upscaler, "How the first pass is made larger: Latent modes "
                    "resize the latent (use a denoise of 0.5 or more), Lanczos and upscaler models the picture",
                    follows=hires_on),
        number("hires_steps", "Hires steps", "Steps of the second pass (0: as many as Steps)", follows=hires_on),
        number("hires_denoise", "Denoise", "How much the second pass changes the larger picture (AUTOMATIC1111's "
               "Denoising strength): lower keeps more of the first pass", step=0.05, decimals=2, follows=hires_on),
        number("tile_size", "Tile size", "Tiled diffusion: denoise in overlapping tiles of this many pixels, "
               "blended at every step, so a large picture (say, after an upscale, with Strength below 1) needs "
               "the memory of one tile; 0 is off", step=64, unit=" px"),
        ChoiceField("refiner", "Refiner", refiner, "An SDXL refiner that takes over the run for its last steps",
                    needs="takes_refiner", off_value="", off_tip="Only SDXL models take a refiner"),
        number("refiner_switch", "Switch at", "The fraction of the steps after which the refiner takes over",
               step=0.05, decimals=2, follows=("refiner", bool)),
        ControlUnitsField("controlnets", "ControlNet", QWidget(), "ControlNet units: steer the image with the "
                          "canvas's control layer"),
    ]
    return {row.name: row for row in rows}
