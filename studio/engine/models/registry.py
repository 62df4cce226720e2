"""Which models exist and how to load one by name."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import DiffusionModel
from .errors import ModelLoadError

__all__ = ["ModelEntry", "ModelLoadError", "available_models", "default_model_key", "load_model", "scan_models",
           "sd_models"]


@dataclass(frozen=True)
class ModelEntry:
    key: str  # what requests, settings and the command line use
    label: str  # what the model picker shows
    family: str
    loader: str  # "module:function" taking (device) and returning a DiffusionModel


BUILTIN = (
    ModelEntry("embedded", "Diffusion Studio emoji (embedded)", "embedded",
               "studio.engine.models.embedded:load_embedded_model"),
    ModelEntry("toy", "Toy shapes (built-in test model)", "toy", "studio.engine.models.toy:ToyShapesModel"),
    # Palette (models/palette.py): listed when palette.safetensors is installed beside the embedded model
    ModelEntry("emoji-colouriser", "Emoji colouriser (Palette, embedded)", "palette",
               "studio.engine.models.palette:load_colouriser"),
    ModelEntry("emoji-inpainting", "Emoji inpainting (Palette, embedded)", "palette",
               "studio.engine.models.palette:load_palette_inpainting"),
)


def embedded_available() -> bool:
    try:
        from .embedded import embedded_weights_present
    except ImportError:
        return False
    return embedded_weights_present()


SD_PREFIX = "sd:"  # "sd:<path>" keys name Stable Diffusion checkpoints and diffusers folders on disk
SD_LOADER = "studio.engine.models.sd.load:load_sd_model"
FLOW_LOADER = "studio.engine.models.flow.load:load_flow_model"
FLOW_FAMILIES = ("sd3", "flux", "zimage")  # models/flow: keyed "sd:<path>" like SD files, so old keys keep working


def sd_models(sd_dirs: Sequence[str | Path] = ()) -> list[ModelEntry]:
    """Stable Diffusion checkpoints found in ``sd_dirs`` and the usual places (see models/sd/discovery.py)."""
    from .sd.discovery import scan

    return _sd_entries(scan(sd_dirs).found)


def available_models(sd_dirs: Sequence[str | Path] = ()) -> list[ModelEntry]:
    """Built-in models that can load on this install, the default first, then Stable Diffusion checkpoints."""
    return scan_models(sd_dirs)[0]


def scan_models(sd_dirs: Sequence[str | Path] = (),
                include_defaults: bool = True) -> tuple[list[ModelEntry], list[str]]:
    """``available_models`` and, for each model file found that cannot be used, a message saying why.

    A bad file never hides the others: it is left out of the list and reported. ``include_defaults=False``
    looks in ``sd_dirs`` (and $DIFFUSION_STUDIO_SD_DIRS) only, not the usual install places (a server's list).
    """
    from .sd.discovery import scan

    found = scan(sd_dirs, include_defaults)
    return _builtins() + _sd_entries(found.found), [s.reason for s in found.skipped]


def palette_available() -> bool:
    try:
        from .palette import palette_weights_present
    except ImportError:
        return False
    return palette_weights_present()


def _builtins() -> list[ModelEntry]:
    present = {"embedded": embedded_available, "palette": palette_available}
    return [e for e in BUILTIN if e.family not in present or present[e.family]()]


def _sd_entries(found) -> list[ModelEntry]:
    return [ModelEntry(SD_PREFIX + str(m.path), f"{m.name} ({model_label(m.family, m.inpainting, m.variant)})",
                       m.family, FLOW_LOADER if m.family in FLOW_FAMILIES else SD_LOADER)
            for m in found]


def model_label(family: str, inpainting: bool = False, variant: str = "") -> str:
    """What the model picker shows beside a file's name: "SD 1.x inpainting", "Flux.1 dev", "SD 3.x 3.5-large"."""
    from .flow import FLOW_LABELS
    from .sd import family_label

    if family in FLOW_LABELS:
        return f"{FLOW_LABELS[family]} {variant}".strip()
    return family_label(family, inpainting)


def model_key(text: str) -> str:
    """The key for what a user typed: a built-in key or an "sd:" key as it is, a path to a model file or folder
    as its "sd:" key (so settings and history name a file one way)."""
    if text.startswith(SD_PREFIX) or any(e.key == text for e in BUILTIN):
        return text
    path = Path(text).expanduser()
    return SD_PREFIX + str(path) if path.exists() else text


def _is_flow_model(path: str) -> bool:
    """Whether ``path`` holds an SD 3.x / Flux.1 / Z-Image model or one of its parts (headers only); a file flow
    detection cannot place goes to the SD loader, whose messages say what it is."""
    from .flow.detect import detect_path

    if not Path(path).expanduser().exists():
        return False
    try:
        return detect_path(Path(path).expanduser()).kind != "sd"
    except ModelLoadError:
        return False


def default_model_key() -> str:
    """The embedded model when its weights are installed, else the toy model (no disk scan)."""
    return "embedded" if embedded_available() else "toy"


def load_model(
    key: str, device: str | torch.device = "cpu", *, text_encoders: Sequence[str | Path] = (),
    vae: str | Path | None = None, offload: str = "auto",
) -> DiffusionModel:
    """Load a model by key, "sd:<path>" or a path; raise ModelLoadError with a readable reason.

    A file or folder holding an SD 3.x / Flux.1 / Z-Image model goes to the flow loader, with ``text_encoders``
    and ``vae`` (files that override the ones found beside it) and ``offload`` (where its parts live in GPU
    memory: flow/offload.py); every other file to the Stable Diffusion loader.
    """
    key = model_key(key)
    if key.startswith(SD_PREFIX):
        path = key[len(SD_PREFIX):]
        flow = _is_flow_model(path)
        try:
            if flow:
                from .flow.load import load_flow_model

                return load_flow_model(path, text_encoders=text_encoders, vae=vae, device=device, offload=offload)
            from .sd.load import load_sd_model

            return load_sd_model(path, device=device)
        except ModelLoadError:
            raise
        except (OSError, ValueError, ImportError, KeyError, TypeError, RuntimeError) as exc:
            # diffusers and transformers turn a damaged file into any of these
            what = "flow" if flow else "Stable Diffusion"
            raise ModelLoadError(f"could not load {what} model {path}: {exc}") from exc
    entry = next((e for e in BUILTIN if e.key == key), None)
    if entry is None:
        known = ", ".join(e.key for e in available_models())
        raise ModelLoadError(f"unknown model {key!r}; available: {known}")
    module_name, fn_name = entry.loader.split(":")
    try:
        fn = getattr(importlib.import_module(module_name), fn_name)
        return fn(device=device)
    except (OSError, ValueError, ImportError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"could not load model {entry.label!r}: {exc}") from exc
