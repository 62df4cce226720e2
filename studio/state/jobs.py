"""What crosses between the UI and the engine thread, as frozen dataclasses and numpy arrays.

Going in: a Job (panel values with the seed settled, the canvas image and mask
when it inpaints or refines, the control layer for its ControlNet units, and the
step to branch from). Coming back: step
previews, the finished image with its parameters text, or a readable failure.
Latents stay in the engine: the UI keeps only small pictures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .panel_values import PanelValues


@dataclass(frozen=True, eq=False)
class Job:
    job_id: int
    values: PanelValues  # seed already resolved for this image
    init_image: np.ndarray | None = field(default=None, repr=False)  # uint8 [H, W, 3], sized to the values
    mask: np.ndarray | None = field(default=None, repr=False)  # float32 [H, W], 1 = repaint
    branch_from: tuple[int, int] | None = None  # (engine run id, step index) to continue from
    batch_index: int = 0
    batch_count: int = 1
    # One per ControlNet unit of ``values``: the control layer (uint8 [H, W, 3], sized to the values) for each
    # unit that is on, None for those that are off; () when no unit is on or nothing is drawn.
    control_images: tuple[np.ndarray | None, ...] = field(default=(), repr=False)

    @property
    def label(self) -> str:
        text = self.values.prompt.strip().splitlines()[0] if self.values.prompt.strip() else "(no prompt)"
        if self.branch_from is not None:
            text += f" — from run {self.branch_from[0]} step {self.branch_from[1] + 1}"
        if self.batch_count > 1:
            text += f" [{self.batch_index + 1}/{self.batch_count}]"
        return text


@dataclass(frozen=True, eq=False)
class StepPreview:
    job_id: int
    run_id: int
    index: int  # 0-based step index within the run's lineage
    total: int  # steps in the whole lineage
    sigma: float
    preview: np.ndarray  # uint8 [h, w, 3]
    elapsed: float  # seconds since this run started
    parent: tuple[int, int] | None = None
    model_switch: bool = False  # the SDXL refiner took over at this step
    hires_start: bool = False  # the hires fix's second pass, at the larger size, starts at this step


@dataclass(frozen=True, eq=False)
class JobResult:
    job_id: int
    run_id: int
    values: PanelValues
    image: np.ndarray  # uint8 [H, W, 3]
    parameters: str  # AUTOMATIC1111 parameters text, written by the engine's formatter
    model_label: str
    steps_run: int
    elapsed: float
    parent: tuple[int, int] | None = None


@dataclass(frozen=True)
class JobFailure:
    job_id: int
    message: str  # readable, says what to fix
    field: str | None = None  # the panel setting at fault, when there is one
    cancelled: bool = False
    step: int | None = None  # where a cancelled run stopped


@dataclass(frozen=True)
class RecommendedSettings:
    """A model's own advice (the engine's models.base.Recommended, torch-free)."""

    steps: int
    cfg_scale: float
    classifier_scale: float
    distilled_cfg: float | None = None  # for models with distilled guidance (Flux dev, Fill)
    spacing: str | None = None  # a spacing the model needs (flow models: trailing), else the user's
    strength: float | None = None  # an img2img strength it needs (the emoji colouriser: 1), else the user's


# Model families (engine/models/base.py ModelInfo.family) that only finish another model's run: the refiner
# picker offers them, the model picker does not. And the families whose runs such a refiner can finish.
REFINER_FAMILIES = ("sdxl_refiner",)
SD_PREFIX = "sd:"  # a Stable Diffusion model's key is this and its path (engine/models/registry.py)
REFINED_FAMILIES = ("sdxl",)
FLOW_FAMILIES = ("sd3", "flux", "zimage")  # models whose parts can be split files (state/model_parts.py)
# Models whose input is the canvas picture itself, so it goes with every job whatever the strength (the emoji
# colouriser paints all of a grey picture at strength 1): keys of engine/models/registry.py's BUILTIN.
CANVAS_INPUT_MODELS = ("emoji-colouriser",)


@dataclass(frozen=True)
class ModelChoice:
    key: str
    label: str
    has_classifier: bool | None = None  # None until the model has loaded once
    default_size: tuple[int, int] | None = None
    size_multiple: int = 8
    recommended: RecommendedSettings | None = None
    clip_skip: bool = False  # whether the model honours clip skip
    max_side: int | None = None  # the largest width or height it accepts (engine/limits.py); None: not known yet
    family: str = ""  # "embedded", "sd1", "sdxl", ... ("" when not known)
    distilled_guidance: bool = False  # the model takes the guidance strength as an input (Flux dev, Fill)
    # What each part was read from and in which precision ("t5xxl: fp8 e4m3fn -> bf16 (t5xxl_fp8_e4m3fn...)"),
    # for flow models (engine/models/flow/precision.py); empty for the others
    loaded_as: tuple[str, ...] = ()

    @property
    def takes_parts(self) -> bool:
        """Whether its text encoders and VAE may be files of their own (the panel's Text encoders / VAE)."""
        return self.family in FLOW_FAMILIES

    @property
    def is_refiner(self) -> bool:
        return self.family in REFINER_FAMILIES

    @property
    def takes_refiner(self) -> bool:
        """Whether an SDXL refiner can take over this model's run (the panel's Refiner setting)."""
        return self.family in REFINED_FAMILIES


@dataclass(frozen=True)
class AdapterChoice:
    """A LoRA, embedding or ControlNet file the engine found: the name a prompt or a request uses, and its path."""

    name: str
    path: str


@dataclass(frozen=True)
class AdapterCatalog:
    """The adapter files the engine can use with the loaded model (its Settings folders and the usual places,
    and the folders beside the loaded checkpoint), each kind sorted by name."""

    loras: tuple[AdapterChoice, ...] = ()
    embeddings: tuple[AdapterChoice, ...] = ()
    controlnets: tuple[AdapterChoice, ...] = ()
    upscalers: tuple[AdapterChoice, ...] = ()  # ESRGAN and kin (Lanczos needs no file and is not listed)

    def of(self, kind: str) -> tuple[AdapterChoice, ...]:
        """The files of one kind: "lora", "embedding", "controlnet" or "upscaler" (the engine's adapter kinds)."""
        return {"lora": self.loras, "embedding": self.embeddings, "controlnet": self.controlnets,
                "upscaler": self.upscalers}[kind]


@dataclass(frozen=True)
class EngineCatalog:
    """What the engine offers, reported once torch has loaded."""

    models: tuple[ModelChoice, ...]
    samplers: tuple[tuple[str, str], ...]  # (key, label)
    spacings: tuple[str, ...]
    default_model: str
    device: str
    skipped_models: tuple[str, ...] = ()  # model files found that cannot be used, each message says why
    adapters: AdapterCatalog = AdapterCatalog()
    torch_version: str = ""  # for Help -> About, which must not import torch itself
    cuda_status: str = ""  # engine/devices.py cuda_status(): found, or why not
