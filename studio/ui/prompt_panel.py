"""The prompt panel: every generation setting, read and written as PanelValues."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..state.jobs import EngineCatalog, ModelChoice
from ..state.panel_values import MAX_SEED, NON_KARRAS_SPACING, SEED_MODES, PanelValues
from .prompt_edit import EMPHASIS_TIP, PromptEdit

SEED_MODE_LABELS = {"fixed": "Fixed", "random": "Random", "reuse": "Reuse last"}


def _spin(lo: int, hi: int, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setSuffix(suffix)
    box.setKeyboardTracking(False)
    box.setMinimumWidth(64)  # below the hint, which sizes for the largest value: the panel stays narrow
    return box


def _dspin(lo: float, hi: float, step: float, decimals: int = 2, suffix: str = "") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setSuffix(suffix)
    box.setKeyboardTracking(False)
    box.setMinimumWidth(64)
    return box


class PromptPanel(QWidget):
    """The settings scroll; the Generate button stays below them, always in view.

    Emits ``values_changed`` on any edit and ``generate_requested`` for the Generate button."""

    values_changed = Signal()
    generate_requested = Signal()
    model_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("promptPanelFrame")
        self.scroll = QScrollArea()
        self.scroll.setObjectName("promptPanel")
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._updating = False
        self._has_classifier = False
        self._has_clip_skip = False
        self._pending_model = ""
        self._pending_sampler = ""
        self._build()
        self.set_values(PanelValues())

    # -- layout --------------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        body.setObjectName("panelBody")
        column = QVBoxLayout(body)
        column.setContentsMargins(10, 8, 10, 10)
        column.setSpacing(8)

        self.prompt = PromptEdit()
        self.prompt.setToolTip(EMPHASIS_TIP)
        self.prompt.setPlaceholderText("Describe the image: “red heart”, “a red car”, “flag of France”…")
        self.prompt.setObjectName("prompt")
        self.prompt.setFixedHeight(70)
        self.negative = PromptEdit()
        self.negative.setToolTip(EMPHASIS_TIP)
        self.negative.setPlaceholderText("What to avoid")
        self.negative.setObjectName("negativePrompt")
        self.negative.setFixedHeight(46)
        prompt_box = self._group("Prompt", column)
        prompt_box.addRow(self.prompt)
        self.prompt_hint = QLabel()
        self.prompt_hint.setObjectName("hint")  # the muted small style
        self.prompt_hint.setWordWrap(True)
        self.prompt_hint.hide()
        prompt_box.addRow(self.prompt_hint)
        prompt_box.addRow(QLabel("Negative prompt"))
        prompt_box.addRow(self.negative)

        self.model = QComboBox()
        self.model.setObjectName("model")
        self.model.setPlaceholderText("Loading models…")
        self.model.setMinimumContentsLength(12)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.sampler = QComboBox()
        self.sampler.setObjectName("sampler")
        self.sampler.setPlaceholderText("Loading…")
        self.sampler.setMinimumContentsLength(8)
        self.sampler.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.karras = QCheckBox("Karras spacing")
        self.steps = _spin(1, 1000)
        self.steps.setObjectName("steps")
        sampling = self._group("Model and sampler", column)
        sampling.addRow("Model", self.model)
        sampling.addRow("Sampler", self.sampler)
        sampling.addRow("", self.karras)
        sampling.addRow("Steps", self.steps)
        self.clip_skip = _spin(1, 12)
        self.clip_skip.setObjectName("clip_skip")
        sampling.addRow("Clip skip", self.clip_skip)

        self.cfg = _dspin(0, 30, 0.5, 1)
        self.cfg.setObjectName("cfg_scale")
        self.rescale = _dspin(0, 1, 0.05)
        self.interval_on = QCheckBox("σ from")
        self.interval_on.setToolTip("Apply classifier-free guidance only between these noise levels")
        self.interval_lo = _dspin(0, 1000, 0.1, 2)
        self.interval_hi = _dspin(0, 1000, 0.5, 2)
        interval_row = QHBoxLayout()
        interval_row.setSpacing(4)
        interval_row.addWidget(self.interval_on)
        interval_row.addWidget(self.interval_lo, 1)
        interval_row.addWidget(QLabel("–"))
        interval_row.addWidget(self.interval_hi, 1)
        self.classifier = _dspin(0, 100, 0.5, 1)
        self.classifier.setObjectName("classifier_scale")
        guidance = self._group("Guidance", column)
        guidance.addRow("CFG scale", self.cfg)
        guidance.addRow("Rescale", self.rescale)
        guidance.addRow("Interval", interval_row)
        guidance.addRow("Classifier", self.classifier)

        self.seed = _spin(0, MAX_SEED)
        self.seed.setObjectName("seed")
        self.seed.setMinimumWidth(90)
        self.seed_mode = QComboBox()
        for mode in SEED_MODES:
            self.seed_mode.addItem(SEED_MODE_LABELS[mode], mode)
        seed_row = QHBoxLayout()
        seed_row.setSpacing(4)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_mode)
        self.width_box = _spin(8, 2048, 8, " px")
        self.width_box.setObjectName("width")
        self.height_box = _spin(8, 2048, 8, " px")
        self.height_box.setObjectName("height")
        size_row = QHBoxLayout()
        size_row.setSpacing(4)
        size_row.addWidget(self.width_box, 1)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box, 1)
        self.batch = _spin(1, 64)
        image = self._group("Seed and size", column)
        image.addRow("Seed", seed_row)
        image.addRow("Size", size_row)
        image.addRow("Batch count", self.batch)

        self.strength = _dspin(0, 1, 0.05)
        self.strength.setObjectName("strength")
        self.feather = _dspin(0, 64, 1, 0, " px")
        refine = self._group("Image to image", column)
        refine.addRow("Strength", self.strength)
        refine.addRow("Mask feather", self.feather)
        hint = QLabel("Below strength 1 the canvas image is refined; a painted mask repaints only that part.")
        hint.setWordWrap(True)
        hint.setObjectName("hint")
        refine.addRow(hint)

        column.addStretch(1)
        self.scroll.setWidget(body)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setToolTip("Generate (Ctrl+Enter)")
        self.generate_button.setMinimumHeight(38)
        bottom = QWidget()
        bottom.setObjectName("generateBar")
        buttons = QHBoxLayout(bottom)
        buttons.setContentsMargins(10, 8, 10, 10)
        buttons.addWidget(self.generate_button, 1)
        self.xyz_button = QPushButton("X/Y/Z…")
        self.xyz_button.setObjectName("xyzButton")
        self.xyz_button.setToolTip("X/Y/Z plot: vary up to three settings, get a labelled grid (Ctrl+Shift+X)")
        self.xyz_button.setMinimumHeight(38)
        buttons.addWidget(self.xyz_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.scroll, 1)
        outer.addWidget(bottom)
        # Wide enough for the body beside the vertical scroll bar: nothing is clipped on the right.
        self.setMinimumWidth(body.minimumSizeHint().width() + self.scroll.verticalScrollBar().sizeHint().width() + 4)

        self.generate_button.clicked.connect(self.generate_requested)
        for signal in (self.prompt.textChanged, self.negative.textChanged, self.karras.toggled,
                       self.steps.valueChanged, self.cfg.valueChanged, self.rescale.valueChanged,
                       self.interval_on.toggled, self.interval_lo.valueChanged, self.interval_hi.valueChanged,
                       self.classifier.valueChanged, self.clip_skip.valueChanged, self.seed.valueChanged,
                       self.seed_mode.currentIndexChanged,
                       self.width_box.valueChanged, self.height_box.valueChanged, self.batch.valueChanged,
                       self.strength.valueChanged, self.feather.valueChanged, self.sampler.currentIndexChanged):
            signal.connect(self._changed)
        self._add_tooltips()
        self.model.currentIndexChanged.connect(self._model_changed)
        self.interval_on.toggled.connect(self._sync_enabled)

    def _add_tooltips(self) -> None:
        tips = {
            self.karras: "Space the noise levels as Karras et al. (2022): more steps at low noise",
            self.steps: "Denoising steps: more is slower and usually cleaner",
            self.cfg: "Classifier-free guidance: how strongly the image follows the prompt (1 = off)",
            self.rescale: "Guidance rescale (Lin et al. 2023): tames over-saturation at high CFG; 0 = off",
            self.interval_on: "Apply guidance only for noise levels σ in this range (Kynkäänniemi et al. 2024)",
            self.seed: "The noise seed: the same seed and settings give the same image",
            self.seed_mode: "Fixed: this seed; Random: a new one each time; Reuse last: the last image's seed",
            self.batch: "How many images to queue, each with its own seed",
            self.strength: "How much of the canvas image to repaint: 1 ignores it, lower keeps more of it",
            self.feather: "Soften the mask edge by this many pixels",
        }
        for widget, tip in tips.items():
            widget.setToolTip(tip)

    def _group(self, title: str, column: QVBoxLayout) -> QFormLayout:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setContentsMargins(8, 14, 8, 8)
        form.setSpacing(6)
        column.addWidget(box)
        return form

    # -- values --------------------------------------------------------------------------------------
    def values(self) -> PanelValues:
        interval = (self.interval_lo.value(), self.interval_hi.value()) if self.interval_on.isChecked() else None
        return PanelValues(
            prompt=self.prompt.toPlainText(), negative_prompt=self.negative.toPlainText(),
            model=self.model.currentData() or self._pending_model,
            sampler=self.sampler.currentData() or self._pending_sampler,
            spacing="karras" if self.karras.isChecked() else NON_KARRAS_SPACING, steps=self.steps.value(),
            cfg_scale=self.cfg.value(), guidance_rescale=self.rescale.value(), guidance_interval=interval,
            classifier_scale=self.classifier.value() if self._has_classifier else 0.0,
            clip_skip=self.clip_skip.value() if self._has_clip_skip else 1, seed=self.seed.value(),
            seed_mode=self.seed_mode.currentData(), width=self.width_box.value(), height=self.height_box.value(),
            strength=self.strength.value(), mask_feather=self.feather.value(), batch_count=self.batch.value())

    def set_values(self, values: PanelValues) -> None:
        self._updating = True
        try:
            if self.prompt.toPlainText() != values.prompt:
                self.prompt.setPlainText(values.prompt)
            if self.negative.toPlainText() != values.negative_prompt:
                self.negative.setPlainText(values.negative_prompt)
            self._pending_model = values.model
            self._select(self.model, values.model)
            self._pending_sampler = values.sampler
            self._select(self.sampler, values.sampler)
            self.karras.setChecked(values.karras)
            self.steps.setValue(values.steps)
            self.cfg.setValue(values.cfg_scale)
            self.rescale.setValue(values.guidance_rescale)
            self.interval_on.setChecked(values.guidance_interval is not None)
            lo, hi = values.guidance_interval or (0.3, 10.0)
            self.interval_lo.setValue(lo)
            self.interval_hi.setValue(hi)
            self.classifier.setValue(values.classifier_scale)
            self.clip_skip.setValue(values.clip_skip)
            self.seed.setValue(min(values.seed, MAX_SEED))
            self.seed_mode.setCurrentIndex(max(0, self.seed_mode.findData(values.seed_mode)))
            self.width_box.setValue(values.width)
            self.height_box.setValue(values.height)
            self.batch.setValue(values.batch_count)
            self.strength.setValue(values.strength)
            self.feather.setValue(values.mask_feather)
        finally:
            self._updating = False
        self._sync_enabled()
        self.values_changed.emit()

    @staticmethod
    def _select(combo: QComboBox, key: str) -> None:
        if combo.count() == 0:  # the engine has not reported its models and samplers yet: the placeholder shows
            combo.setCurrentIndex(-1)
            return
        index = combo.findData(key)
        if index < 0 and key:
            combo.addItem(key, key)  # unknown until the engine reports; kept so the value survives
            index = combo.count() - 1
        if index >= 0:
            combo.setCurrentIndex(index)

    # -- engine facts --------------------------------------------------------------------------------
    def set_catalog(self, catalog: EngineCatalog) -> None:
        keep = self.values()
        self._updating = True
        try:
            self.model.clear()
            for choice in catalog.models:
                self.model.addItem(choice.label, choice.key)
            self.sampler.clear()
            for key, label in catalog.samplers:
                self.sampler.addItem(label, key)
        finally:
            self._updating = False
        self.set_values(keep.with_changes(model=keep.model or catalog.default_model))

    def set_prompt_hint(self, text: str) -> None:
        """What the model makes of the prompt (see prompt_hint.py); empty hides the line."""
        self.prompt_hint.setText(text)
        self.prompt_hint.setVisible(bool(text))

    def set_model_info(self, choice: ModelChoice) -> None:
        """Enable the classifier scale only for a model that has a classifier."""
        self._has_classifier = bool(choice.has_classifier)
        self._has_clip_skip = bool(choice.clip_skip)
        self._sync_enabled()

    def mark_field(self, field: str | None) -> None:
        """Outline the widget of the setting an error names (cleared by passing None)."""
        for widget in (self.prompt, self.model, self.sampler, self.steps, self.cfg, self.classifier, self.clip_skip,
                       self.seed, self.width_box, self.height_box, self.strength):
            widget.setProperty("error", widget.objectName() == field)
            widget.style().unpolish(widget)
            widget.style().polish(widget)

    def _sync_enabled(self) -> None:
        self.classifier.setEnabled(self._has_classifier)
        self.clip_skip.setEnabled(self._has_clip_skip)
        self.clip_skip.setToolTip("Read the CLIP text encoder this many layers from its end (2 suits many "
                                  "anime-style SD 1.5 models)" if self._has_clip_skip else
                                  "Only Stable Diffusion 1.x and 2.x models read CLIP layers this way")
        self.classifier.setToolTip("Classifier guidance scale: steer towards the prompt's class with the model's "
                                   "noisy classifier" if self._has_classifier else "This model has no classifier")
        self.interval_lo.setEnabled(self.interval_on.isChecked())
        self.interval_hi.setEnabled(self.interval_on.isChecked())

    def _changed(self) -> None:
        if not self._updating:
            self.values_changed.emit()

    def _model_changed(self) -> None:
        if self._updating:
            return
        self._pending_model = self.model.currentData() or ""
        self.model_selected.emit(self._pending_model)
        self.values_changed.emit()
