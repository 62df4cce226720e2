"""The prompt panel: every generation setting, read and written as PanelValues through one field table."""

from __future__ import annotations

import math
from typing import cast

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..state.jobs import AdapterCatalog, EngineCatalog, ModelChoice
from ..state.panel_values import PanelValues
from ..state.prompt_snippets import lora_tag
from .adapter_picker import AdapterButton
from .control_units_field import ControlUnitsField
from .panel_fields import HIRES_UPSCALERS, NO_REFINER, ChoiceField, NumberField, OptionalField, PanelField, build_fields
from .prompt_edit import PromptEdit

NOTICE_MS = 8000  # how long a notice (a value the panel adapted) stays under the settings


class PromptPanel(QWidget):
    """The settings scroll; the Generate button stays below them, always in view.

    Emits ``values_changed`` on any edit and ``generate_requested`` for the Generate button.
    Every field is a row of ``self.fields`` (see panel_fields.py); the attributes below
    (``self.steps``, ``self.width_box``…) are those rows' widgets, for layout and tests."""

    values_changed = Signal()
    generate_requested = Signal()
    model_selected = Signal(str)
    advanced_toggled = Signal(bool)
    adapters_changed = Signal()  # the engine listed the LoRA / embedding files again
    parts_requested = Signal(str)  # the Text encoders / VAE button, with the picked model's key

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("promptPanelFrame")
        self.scroll = QScrollArea()
        self.scroll.setObjectName("promptPanel")
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._updating = False
        self._model_info = ModelChoice("", "")
        self._families: dict[str, str] = {}  # model key -> family, from the engine's catalog
        self._marked: str | None = None  # the field an engine error named, outlined until it is fixed
        self._typed: dict[str, float | None] = {}  # number fields: the number typed, before the box fixed it
        self.adapters = AdapterCatalog()
        self.adapters_listed = False  # until the engine reports, no name can be said to be missing
        self.fields: dict[str, PanelField] = build_fields()
        self._build()
        self._connect()
        self._sync_parts_row()  # hidden until a flow model is picked
        self.set_values(PanelValues())

    # -- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        f = self.fields
        self.prompt: PromptEdit = f["prompt"].widget
        self.negative: PromptEdit = f["negative_prompt"].widget
        self.model: QComboBox = f["model"].widget
        self.sampler: QComboBox = f["sampler"].widget
        self.karras = f["spacing"].widget
        self.steps = f["steps"].widget
        self.cfg = f["cfg_scale"].widget
        self.distilled = f["distilled_cfg"].widget
        self.rescale = f["guidance_rescale"].widget
        interval = self._optional("guidance_interval")
        self.interval_on = interval.check
        self.interval_lo, self.interval_hi = interval.boxes
        threshold = self._optional("dynamic_threshold")
        self.threshold_on = threshold.check
        self.threshold = threshold.boxes[0]
        self.classifier = f["classifier_scale"].widget
        self.clip_skip = f["clip_skip"].widget
        self.seed = f["seed"].widget
        self.seed_mode: QComboBox = f["seed_mode"].widget
        self.variation_seed = f["variation_seed"].widget
        self.variation_strength = f["variation_strength"].widget
        self.width_box = f["width"].widget
        self.height_box = f["height"].widget
        self.strength = f["strength"].widget
        self.feather = f["mask_feather"].widget
        self.batch = f["batch_count"].widget
        self.inpaint_area: QComboBox = f["inpaint_area"].widget
        self.inpaint_padding = f["inpaint_padding"].widget
        self.masked_content: QComboBox = f["masked_content"].widget
        self.refiner: QComboBox = f["refiner"].widget
        hires = self._optional("hires_scale")
        self.hires_on = hires.check
        self.hires_scale = hires.boxes[0]
        self.hires_upscaler: QComboBox = f["hires_upscaler"].widget
        self.hires_steps = f["hires_steps"].widget
        self.hires_denoise = f["hires_denoise"].widget
        self.tile_size = f["tile_size"].widget
        self.refiner_switch = f["refiner_switch"].widget

        body = QWidget()
        body.setObjectName("panelBody")
        column = QVBoxLayout(body)
        column.setContentsMargins(8, 6, 8, 8)
        column.setSpacing(6)

        self.prompt.setPlaceholderText("Describe the image: “red heart”, “a red car”, “flag of France”…")
        self.prompt.setFixedHeight(62)
        self.negative.setPlaceholderText("What to avoid")
        self.negative.setFixedHeight(38)
        prompt_box = self._group("Prompt", column)
        prompt_box.addRow(self.prompt)
        self.prompt_hint = QLabel()
        self.prompt_hint.setObjectName("hint")  # the muted small style
        self.prompt_hint.setWordWrap(True)
        self.prompt_hint.hide()
        prompt_box.addRow(self.prompt_hint)
        # The pickers share the negative prompt's label row: the panel keeps its height.
        self.lora_button = AdapterButton("lora", "LoRA ▾", "Insert a LoRA as <lora:name:1> into the prompt "
                                         "(edit the weight in the text, or Ctrl+Up / Ctrl+Down on the tag)")
        self.lora_button.setObjectName("loraButton")
        self.embedding_button = AdapterButton("embedding", "Embedding ▾", "Insert an embedding's name into the "
                                              "prompt box used last (the prompt, or the negative prompt)")
        self.embedding_button.setObjectName("embeddingButton")
        negative_label = QLabel("Negative prompt")
        negative_label.setBuddy(self.negative)
        for button in (self.lora_button, self.embedding_button):
            button.setFixedHeight(negative_label.sizeHint().height() + 2)  # no taller than the label row was
        label_row = QHBoxLayout()
        label_row.setSpacing(2)
        label_row.addWidget(negative_label, 1)
        label_row.addWidget(self.lora_button)
        label_row.addWidget(self.embedding_button)
        prompt_box.addRow(label_row)
        prompt_box.addRow(self.negative)
        self._last_prompt_box = self.prompt

        self.model.setMinimumContentsLength(12)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sampler.setMinimumContentsLength(8)
        self.sampler.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        sampling = self._group("Model and sampler", column)
        sampling.addRow("Model", self.model)
        # Split SD 3.x / Flux.1 / Z-Image files: which text encoders and VAE, and what precision each was read in.
        self.parts_button = QToolButton()
        self.parts_button.setObjectName("partsButton")
        self.parts_button.setText("Text encoders / VAE…")
        self.parts_button.setToolTip("Pick this model's text encoder and VAE files when they are not found beside it "
                                     "(models/text_encoders, models/vae)")
        self.loaded_as = QLabel()
        self.loaded_as.setObjectName("hint")
        self.loaded_as.setWordWrap(True)
        self.loaded_as.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        sampling.addRow("", self.parts_button)
        sampling.addRow("", self.loaded_as)
        self._sampling_form = sampling
        sampling.addRow("Sampler", self.sampler)
        sampling.addRow("Steps", self._row(self.steps, self._label("CFG", self.cfg), self.cfg))
        sampling.addRow("Distilled CFG", self.distilled)
        self._sampling = sampling
        sampling.setRowVisible(self.distilled, False)  # shown for models with distilled guidance (Flux)

        self.seed.setMinimumWidth(90)
        image = self._group("Seed and size", column)
        image.addRow("Seed", self._row(self.seed, self.seed_mode, stretch_first=True))
        image.addRow("Size", self._row(self.width_box, QLabel("×"), self.height_box))
        image.addRow("Batch count", self.batch)

        refine = self._group("Image to image", column)
        refine.addRow("Strength", self._row(self.strength, self._label("Feather", self.feather), self.feather))
        refine.addRow("Inpaint", self._row(self.inpaint_area, self._label("Padding", self.inpaint_padding),
                                           self.inpaint_padding, stretch_first=True))
        refine.addRow("Masked", self.masked_content)
        refine.parentWidget().setToolTip("Below strength 1 the canvas image is refined; a painted mask repaints "
                                         "only that part (Inpaint and Masked say how).")

        self.hires_upscaler.setMinimumContentsLength(8)
        self.hires_upscaler.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        larger = self._group("Hires fix", column)
        hires.widget.setLayout(self._row(self.hires_on, self.hires_scale, self.hires_upscaler))
        hires.widget.layout().setContentsMargins(0, 0, 0, 0)
        larger.addRow(hires.widget)
        larger.addRow("Steps", self._row(self.hires_steps, self._label("Denoise", self.hires_denoise),
                                         self.hires_denoise))
        self.tile_size.setSpecialValueText("Off")  # 0 px: no tiles
        larger.addRow("Tiles", self.tile_size)

        self.controlnets = cast(ControlUnitsField, f["controlnets"])
        control = self._group("ControlNet", column)
        control.addRow(self.controlnets.widget)

        # Rarely changed: folded away so the everyday settings fit the window without scrolling.
        self.advanced_button = QToolButton()
        self.advanced_button.setObjectName("advancedToggle")
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setAutoRaise(True)
        column.addWidget(self.advanced_button)
        self.advanced = QGroupBox()
        self.advanced.setObjectName("advancedGroup")
        advanced = self._form(self.advanced)
        advanced.setContentsMargins(8, 6, 8, 6)  # no title to make room for
        advanced.addRow("", self.karras)
        advanced.addRow("Rescale", self.rescale)
        interval.widget.setLayout(self._row(self.interval_on, self.interval_lo, QLabel("–"), self.interval_hi))
        interval.widget.layout().setContentsMargins(0, 0, 0, 0)
        advanced.addRow("Interval", interval.widget)
        threshold.widget.setLayout(self._row(self.threshold_on, self.threshold))
        threshold.widget.layout().setContentsMargins(0, 0, 0, 0)
        advanced.addRow("Threshold", threshold.widget)
        advanced.addRow("Classifier", self.classifier)
        advanced.addRow("Clip skip", self.clip_skip)
        self.refiner.setMinimumContentsLength(8)
        self.refiner.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        advanced.addRow("Refiner", self._row(self.refiner, self._label("at", self.refiner_switch),
                                             self.refiner_switch, stretch_first=True))
        self.variation_seed.setMinimumWidth(90)
        advanced.addRow("Variation", self._row(self.variation_seed, self._label("by", self.variation_strength),
                                               self.variation_strength, stretch_first=True))
        self.advanced.hide()
        column.addWidget(self.advanced)

        column.addStretch(1)
        self.scroll.setWidget(body)
        self.message = QLabel()  # what is wrong with a setting while it is typed, or what the panel adapted
        self.message.setObjectName("fieldMessage")
        self.message.setWordWrap(True)
        self.message.hide()
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setToolTip("Generate (Ctrl+Enter)")
        self.generate_button.setMinimumHeight(38)
        bottom = QWidget()
        bottom.setObjectName("generateBar")
        self.xyz_button = QPushButton("X/Y/Z…")
        self.xyz_button.setObjectName("xyzButton")
        self.xyz_button.setToolTip("X/Y/Z plot: vary up to three settings, get a labelled grid (Ctrl+Shift+X)")
        self.xyz_button.setMinimumHeight(38)
        column_below = QVBoxLayout(bottom)
        column_below.setContentsMargins(10, 6, 10, 10)
        column_below.setSpacing(6)
        column_below.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.xyz_button)
        column_below.addLayout(buttons)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.scroll, 1)
        outer.addWidget(bottom)
        # Wide enough for the body beside the vertical scroll bar: nothing is clipped on the right.
        self.advanced.show()
        width = body.minimumSizeHint().width()
        self.advanced.hide()
        self.setMinimumWidth(width + self.scroll.verticalScrollBar().sizeHint().width() + 4)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.setInterval(NOTICE_MS)
        self._notice_timer.timeout.connect(self._show_message)

    def _optional(self, name: str) -> OptionalField:
        return cast(OptionalField, self.fields[name])

    @staticmethod
    def _label(text: str, buddy: QWidget) -> QLabel:
        """A label inside a row of two settings; it shares its setting's tooltip."""
        label = QLabel(text)
        label.setBuddy(buddy)
        label.setToolTip(buddy.toolTip())
        return label

    @staticmethod
    def _row(*widgets: QWidget, stretch_first: bool = False) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(4)
        for i, widget in enumerate(widgets):
            grows = not isinstance(widget, QLabel) and (i == 0 or not stretch_first)
            row.addWidget(widget, 1 if grows else 0)
        return row

    def _form(self, box: QGroupBox) -> QFormLayout:
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setContentsMargins(8, 8, 8, 6)
        form.setHorizontalSpacing(6)
        form.setVerticalSpacing(4)
        return form

    def _group(self, title: str, column: QVBoxLayout) -> QFormLayout:
        box = QGroupBox(title)
        column.addWidget(box)
        return self._form(box)

    def _connect(self) -> None:
        self.generate_button.clicked.connect(self.generate_requested)
        for field in self.fields.values():
            for signal in field.signals():
                signal.connect(lambda *_, f=field: self._changed(f))
            if isinstance(field, NumberField):
                box = field.widget
                # The line edit's signal: the box's own textChanged waits for the edit to finish.
                box.lineEdit().textChanged.connect(lambda _text, f=field: self._edited(f))
                box.editingFinished.connect(lambda f=field: self._edit_finished(f))
        self.model.currentIndexChanged.connect(self._model_changed)
        self.model.currentIndexChanged.connect(self._sync_parts_row)
        self.parts_button.clicked.connect(lambda: self.parts_requested.emit(self.model.currentData() or ""))
        self.prompt.capped.connect(self._prompt_capped)
        self.negative.capped.connect(self._prompt_capped)
        self.advanced_button.toggled.connect(self.set_advanced_open)
        self.prompt.focused.connect(lambda: self._use_prompt_box(self.prompt))
        self.negative.focused.connect(lambda: self._use_prompt_box(self.negative))
        self.lora_button.picked.connect(lambda name: self.insert_into(self.prompt, lora_tag(name)))
        self.embedding_button.picked.connect(lambda name: self.insert_into(self._last_prompt_box, name))

    # -- values --------------------------------------------------------------------------------------
    def values(self) -> PanelValues:
        return PanelValues(**{name: self._read(field) for name, field in self.fields.items()})

    def _read(self, field: PanelField) -> object:
        return field.read() if self._available(field) else field.off_value

    def set_values(self, values: PanelValues) -> None:
        self._notice_timer.stop()  # a notice about the values being replaced no longer applies
        self._show_message()
        self._updating = True
        notices = []
        try:
            for name, field in self.fields.items():
                value = getattr(values, name)
                field.write(value)
                box = field.widget
                if isinstance(field, NumberField) and not math.isnan(value) and \
                        not box.minimum() <= value <= box.maximum():
                    notices.append(field.adjustment(value))  # beyond what the box (or the model) takes
        finally:
            self._updating = False
        self._typed.clear()
        self._sync_enabled()
        self._refresh_outlines()
        self._notify(notices)
        self.values_changed.emit()

    def show_used_seed(self, seed: int) -> None:
        """In Random mode, show the seed the last image was drawn with (the next one is drawn afresh)."""
        if self.seed_mode.currentData() == "random":
            self.fields["seed"].write(seed)

    # -- engine facts --------------------------------------------------------------------------------
    def set_catalog(self, catalog: EngineCatalog) -> None:
        keep = self.values()
        self._updating = True
        try:
            self._choice("sampler").set_items([(label, key) for key, label in catalog.samplers])
            self._choice("model").set_items([(m.label, m.key) for m in catalog.models if not m.is_refiner])
            self._choice("refiner").set_items([(NO_REFINER, "")] + [(m.label, m.key) for m in catalog.models
                                                                     if m.is_refiner])
        finally:
            self._updating = False
        self._families = {m.key: m.family for m in catalog.models}
        self.set_values(keep.with_changes(model=keep.model or catalog.default_model))
        self.set_adapters(catalog.adapters)
        self._sync_parts_row()

    def set_adapters(self, adapters: AdapterCatalog) -> None:
        """The LoRAs, embeddings and ControlNets the engine found, for the pickers, the ControlNet units' model
        boxes and the prompt hint's name check."""
        self.adapters = adapters
        self.adapters_listed = True
        self.lora_button.set_items(adapters.loras)
        self.embedding_button.set_items(adapters.embeddings)
        self.controlnets.set_models([choice.name for choice in adapters.controlnets])
        upscaler = self._choice("hires_upscaler")
        chosen = upscaler.read()
        self._updating = True
        try:  # the upscaler files found, after the latent modes and Lanczos; the choice made stays
            upscaler.set_items([(name, name) for name in HIRES_UPSCALERS] +
                               [(choice.name, choice.name) for choice in adapters.upscalers])
            upscaler.write(chosen)
        finally:
            self._updating = False
        self.adapters_changed.emit()

    # -- the pickers ---------------------------------------------------------------------------------
    def _use_prompt_box(self, box: PromptEdit) -> None:
        self._last_prompt_box = box

    def insert_into(self, box: PromptEdit, snippet: str) -> None:
        """Put a picked name into a prompt box (at its cursor, or after its text) and give it the focus."""
        box.insert_snippet(snippet)
        box.setFocus()

    def _choice(self, name: str) -> ChoiceField:
        return cast(ChoiceField, self.fields[name])

    def set_prompt_hint(self, text: str) -> None:
        """What the model makes of the prompt (see prompt_hint.py); empty hides the line."""
        self.prompt_hint.setText(text)
        self.prompt_hint.setVisible(bool(text))

    def set_model_info(self, choice: ModelChoice) -> None:
        """The loaded model's facts: which settings it reads (classifier, clip skip) and its size multiple."""
        self._model_info = choice
        if self._marked == "model" and choice.key == self.model.currentData():
            self._marked = None  # the model the engine could not load has loaded now (its parts were picked)
        if choice.family:
            self._families.setdefault(choice.key, choice.family)  # the catalog's (from the file) comes first
        self._sync_parts_row()
        notices = []
        for field in self.fields.values():
            if isinstance(field, NumberField) and field.snaps:
                box, before = field.widget, field.widget.value()
                box.multiple = max(1, choice.size_multiple)
                box.setSingleStep(max(1, choice.size_multiple))
                # The model's own size limit (engine/limits.py), when it is below the panel's.
                box.setMaximum(min(int(field.limit.hi), choice.max_side or int(field.limit.hi)))
                notices.append(field.adjustment(before))
        self._sampling.setRowVisible(self.distilled, bool(choice.distilled_guidance))
        self._sync_enabled()
        self._refresh_outlines()
        self._notify(notices)

    def _sync_parts_row(self) -> None:
        """The Text encoders / VAE row shows for flow models; under it, the loaded model's precision per part."""
        key = self.model.currentData() or ""
        flow = ModelChoice(key, "", family=self._families.get(key, "")).takes_parts
        self._sampling_form.setRowVisible(self.parts_button, flow)
        lines = [line.replace(" -> ", " → ") for line in
                 (self._model_info.loaded_as if self._model_info.key == key else ())]
        # The panel is narrow: each part's precision here, the files it came from in the tooltip.
        self.loaded_as.setText("\n".join(line.rpartition(" (")[0] or line for line in lines))
        self.loaded_as.setToolTip("\n".join(lines))
        self._sampling_form.setRowVisible(self.loaded_as, flow and bool(lines))

    def _available(self, field: PanelField) -> bool:
        return field.needs is None or bool(getattr(self._model_info, field.needs, False))

    def _sync_enabled(self) -> None:
        for field in self.fields.values():
            field.set_available(self._available(field) and self._follows_ok(field))

    def _follows_ok(self, field: PanelField) -> bool:
        if field.follows is None:
            return True
        name, test = field.follows
        return bool(test(self._read(self.fields[name])))

    # -- errors and notices --------------------------------------------------------------------------
    def mark_field(self, field: str | None) -> None:
        """Outline the widget of the setting an error names, until its value is changed to one that can run
        (None clears it). Names are PanelValues fields, which are also the engine request's."""
        self._marked = field if field in self.fields else None
        self._refresh_outlines()

    def problems(self) -> dict[str, str]:
        """Each field whose value, as it stands in its widget, cannot run: field name -> what to fix."""
        found = {}
        for name, field in self.fields.items():
            if self._available(field):
                problem = field.problem()
                if problem:
                    found[name] = problem
        return found

    def _refresh_outlines(self) -> None:
        problems = self.problems()
        for name, field in self.fields.items():
            error = name in problems or name == self._marked
            for widget in field.outlined:
                if widget.property("error") is not error:
                    widget.setProperty("error", error)
                    widget.style().unpolish(widget)
                    widget.style().polish(widget)
        self._show_message(next(iter(problems.values()), ""))

    def _show_message(self, error: str = "", notice: str = "") -> None:
        if error or notice:
            self._notice_timer.stop() if error else self._notice_timer.start()
        elif self._notice_timer.isActive():
            return  # a notice is still on show; no error to replace it
        text = error or notice
        self.message.setText(text)
        self.message.setProperty("kind", "error" if error else "notice")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
        self.message.setVisible(bool(text))

    def _notify(self, notices: list[str | None]) -> None:
        text = " ".join(n for n in notices if n)
        if text:
            self._show_message(notice=text)

    def _prompt_capped(self, original: int) -> None:
        limit = PromptEdit.MAX_CHARS
        cut = f"was cut to {limit:,} characters (it had {original:,})" if original > limit + 1 else \
            f"holds at most {limit:,} characters"
        self._show_message(notice=f"The prompt {cut}: longer prompts slow the window and no model reads them.")

    # -- edits ---------------------------------------------------------------------------------------
    def _changed(self, field: PanelField) -> None:
        if self._updating:
            return
        if field.name == self._marked and field.problem() is None:
            self._marked = None  # changed to a value that can run: the engine's complaint no longer applies
        if any(other.follows and other.follows[0] == field.name for other in self.fields.values()):
            self._sync_enabled()
        self._refresh_outlines()
        self.values_changed.emit()

    def _edited(self, field: NumberField) -> None:
        """A keystroke in a number box: say at once when the number is out of range."""
        self._typed[field.name] = field.widget.typed_number()
        if not self._updating:
            self._refresh_outlines()

    def _edit_finished(self, field: NumberField) -> None:
        notice = field.adjustment(self._typed.pop(field.name, None))
        self._refresh_outlines()
        if notice:
            self._show_message(notice=notice)

    def _model_changed(self) -> None:
        if self._updating:
            return
        self.model_selected.emit(self.model.currentData() or "")

    # -- the advanced section ------------------------------------------------------------------------
    def advanced_open(self) -> bool:
        return self.advanced_button.isChecked()

    def set_advanced_open(self, open_: bool) -> None:
        """Fold the rarely used guidance settings in or out (the window keeps the state in its settings)."""
        if self.advanced_button.isChecked() != open_:
            self.advanced_button.setChecked(open_)  # comes back here through toggled
            return
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.advanced.setVisible(open_)
        if open_:  # once the layout has made room: show what was opened
            QTimer.singleShot(0, self._show_advanced)
        self.advanced_toggled.emit(open_)

    def _show_advanced(self) -> None:
        self.scroll.ensureWidgetVisible(self.advanced, 0, 0)
