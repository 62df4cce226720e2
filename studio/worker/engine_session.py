"""The torch side of the engine thread: loads models, runs jobs, turns engine errors into readable failures.

Everything handed back is numpy or a frozen dataclass from studio.state.jobs.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import torch

from ..engine.devices import cuda_status, is_out_of_memory, pick_device
from ..engine.limits import max_side
from ..engine.models.registry import (
    BUILTIN,
    SD_PREFIX,
    ModelLoadError,
    default_model_key,
    load_model,
    scan_models,
)
from ..engine.models.sd.adapter_files import KINDS, AdapterLibrary
from ..engine.request import RequestError, StepEvent
from ..engine.runner import Cancelled, NonFiniteError, Runner
from ..engine.samplers import SAMPLERS
from ..engine.schedules import SPACINGS
from ..io.parameters import format_parameters
from ..state.jobs import (
    AdapterCatalog,
    AdapterChoice,
    EngineCatalog,
    Job,
    JobFailure,
    JobResult,
    ModelChoice,
    RecommendedSettings,
    StepPreview,
)
from ..state.model_parts import ModelParts
from .job_request import request_for_job


class EngineSession:
    """One loaded model and its runner; every method runs on the engine thread."""

    def __init__(self, device: str = "auto", threads: int = 0, model_folders: tuple[str, ...] = ()):
        self.device = str(pick_device(device))
        if threads > 0:
            torch.set_num_threads(threads)
        self.model_key: str | None = None
        self.runner: Runner | None = None
        self.model_folders = tuple(model_folders)
        self._labels: dict[str, str] = {}
        self.model_parts: dict[str, ModelParts] = {}  # model key -> the encoder / VAE files the user picked
        self._loaded_parts: ModelParts | None = None
        self.gpu_memory = "auto"  # Settings → GPU memory (engine/memory_modes.py), for the models that place parts
        self._placed_memory = "auto"  # the setting the loaded model was placed with

    def catalog(self) -> EngineCatalog:
        """Built-in models, then Stable Diffusion checkpoints in the user's folders and the usual places.

        Model files that cannot be used are reported in ``skipped_models``; none of them, nor a scan that
        fails outright, keeps the engine from becoming ready with the models that do work."""
        try:
            entries, skipped = scan_models(self.model_folders)
        except Exception as exc:  # the scan reads whatever is on disk: it must not stop the engine starting
            traceback.print_exception(exc, file=sys.stderr)
            entries = [e for e in BUILTIN if e.key == default_model_key()]
            skipped = [f"The model folders could not be searched ({type(exc).__name__}: {exc})"]
        self._labels = {e.key: e.label for e in entries}
        models = tuple(ModelChoice(e.key, e.label, family=e.family) for e in entries)
        samplers = tuple((s.name, s.label) for s in SAMPLERS.values())
        return EngineCatalog(models, samplers, tuple(SPACINGS), default_model_key(), self.device, tuple(skipped),
                             self.adapter_catalog(), torch_version=str(torch.__version__), cuda_status=cuda_status())

    def set_model_folders(self, folders: tuple[str, ...]) -> None:
        """New Settings folders: the loaded model's runner looks for adapters there from now on."""
        self.model_folders = tuple(folders)
        if self.runner is not None:
            self.runner.adapters = AdapterLibrary(self.model_folders, _checkpoint(self.model_key))

    def adapter_library(self) -> AdapterLibrary:
        """The loaded model's adapter folders (beside its checkpoint too); before any load, the Settings folders'."""
        return self.runner.adapters if self.runner is not None else AdapterLibrary(self.model_folders)

    def adapter_catalog(self, rescan: bool = False) -> AdapterCatalog:
        """The LoRAs, embeddings, ControlNets and upscalers the runner resolves names against (``rescan``: list
        the folders again, for files added since). Before any model has loaded: the Settings folders' ones."""
        library = self.adapter_library()
        if rescan:
            library.rescan()
        try:
            found = {kind: tuple(AdapterChoice(a.name, str(a.path)) for a in library.list(kind)) for kind in KINDS}
        except Exception as exc:  # reads whatever is on disk: a folder it cannot list must not stop the engine
            traceback.print_exception(exc, file=sys.stderr)
            return AdapterCatalog()
        return AdapterCatalog(found["lora"], found["embedding"], found["controlnet"], found["upscaler"])

    def ensure_model(self, key: str) -> ModelChoice:
        """Load ``key`` unless it is the model already loaded (raises ModelLoadError)."""
        key = key or default_model_key()
        parts = self.model_parts.get(key, ModelParts())
        if key != self.model_key or self.runner is None or parts != self._loaded_parts:
            # The old model stays until the new one has loaded: a bad checkpoint leaves the studio working.
            picked = {} if parts.empty else {"text_encoders": parts.text_encoders, "vae": parts.vae or None}
            model = load_model(key, self.device, offload=self.gpu_memory, **picked)
            _warm_up(model)
            self.runner = Runner(model, adapters=AdapterLibrary(self.model_folders, _checkpoint(key)))
            self.model_key = key
            self._loaded_parts = parts
            self._placed_memory = self.gpu_memory
        elif self.gpu_memory != self._placed_memory and hasattr(self.runner.model, "place"):
            from ..engine.models.flow.load import place_model

            place_model(self.runner.model, self.gpu_memory)  # the loaded model's parts move; nothing is read again
            self._placed_memory = self.gpu_memory  # (a setting that cannot fit says so again at each use)
        info = self.runner.model.info
        advice = RecommendedSettings(info.recommended.steps, info.recommended.cfg_scale,
                                     info.recommended.classifier_scale, info.recommended.distilled_cfg,
                                     info.recommended.spacing, info.recommended.strength)
        report = getattr(self.runner.model, "load_report", None)
        return ModelChoice(key, self._labels.get(key, info.name), info.has_classifier, info.default_size,
                           info.size_multiple, advice, info.clip_skip, max_side(info.family), info.family,
                           info.distilled_guidance, loaded_as=report.lines() if report is not None else ())

    def describe_prompt(self, key: str, prompt: str) -> str:
        """The loaded model's reading of a prompt, for models that offer one (never loads a model)."""
        key = key or default_model_key()
        if self.runner is None or key != self.model_key:
            return ""
        describe = getattr(self.runner.model, "describe_prompt", None)
        return describe(prompt) if describe is not None else ""

    def run(self, job: Job, on_step: Callable[[StepPreview], None], should_cancel: Callable[[], bool]) -> JobResult:
        choice = self.ensure_model(job.values.model)
        request = request_for_job(job, choice.key)

        def forward(event: StepEvent) -> None:
            on_step(StepPreview(job.job_id, event.run_id, event.index, event.total, event.sigma, event.preview,
                                event.elapsed, job.branch_from, event.model_switch, event.hires_start))

        result = self.runner.run(request, on_step=forward, should_cancel=should_cancel, branch_from=job.branch_from)
        values = job.values.with_changes(model=choice.key)
        text = format_parameters(request, choice.label, result.infotext)
        return JobResult(job.job_id, result.run_id, values, result.image, text, choice.label, result.steps_run,
                         result.elapsed, result.parent)


def _checkpoint(key: str | None) -> str | None:
    """The file or folder a Stable Diffusion model key names (adapters are looked for beside it)."""
    return key[len(SD_PREFIX):] if key and key.startswith(SD_PREFIX) else None


def _warm_up(model) -> None:
    """Encode a prompt once, while the status still says "Loading model…".

    A text encoder may import its libraries lazily on first use (the embedded model's takes 2-3 s, in
    chunks that hold the GIL); paying that here keeps the first Generate, and the UI during it, responsive.
    """
    width, height = model.info.default_size
    try:
        model.encode_prompt("a picture", "", width, height)  # not empty: an empty prompt may skip the encoder
    except Exception:  # the real run reports any problem with a readable message
        pass


def describe_failure(job_id: int, exc: BaseException) -> JobFailure:
    """A message for the window that says what went wrong and what to try."""
    if isinstance(exc, Cancelled):
        return JobFailure(job_id, f"Cancelled at step {exc.step + 1}.", cancelled=True, step=exc.step)
    if isinstance(exc, RequestError):
        return JobFailure(job_id, f"Cannot generate — {exc}", field=exc.field)
    if isinstance(exc, NonFiniteError):
        return JobFailure(job_id, f"The image went bad: {exc}.")
    if isinstance(exc, ModelLoadError):
        return JobFailure(job_id, f"Could not use the model — {exc}.", field="model")
    if is_out_of_memory(exc):
        return JobFailure(job_id, "Out of memory: try a smaller width and height, fewer steps of Heun, "
                                  "or the CPU device in Settings.")
    traceback.print_exception(exc, file=sys.stderr)
    return JobFailure(job_id, f"The engine failed: {type(exc).__name__}: {exc}")

