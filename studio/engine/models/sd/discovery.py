"""Find Stable Diffusion checkpoints the user already has on disk.

Looks in folders the user configures plus the usual places: AUTOMATIC1111's
models/Stable-diffusion, ComfyUI's models/checkpoints and the Hugging Face hub
cache. Single files are classified from their safetensors header alone (no
weights read, nothing unpickled); .ckpt files are listed with their family
unknown until loaded. Needs neither diffusers nor transformers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ModelLoadError
from ..flow.tensors import read_key_shapes
from .detect import detect_diffusers_folder, detect_keys
from .safety import PICKLE_SUFFIXES

ENV_DIRS = "DIFFUSION_STUDIO_SD_DIRS"  # extra folders, separated by os.pathsep
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".gguf")  # .gguf: quantised flow models (models/flow)
MAX_DEPTH = 3  # A1111 users sort checkpoints into sub-folders; do not walk whole disks


@dataclass(frozen=True)
class FoundModel:
    path: Path
    name: str
    family: str  # "sd1", "sd2", "sdxl", "sd3", "flux", "zimage", or "unknown" (a .ckpt, classified when loaded)
    layout: str  # "single_file" or "diffusers"
    inpainting: bool = False  # a 9-channel inpainting UNet (listed as e.g. "SD 1.x inpainting")
    variant: str = ""  # flow models: "dev", "schnell", "fill", "3.5-large", ... (flow/detect.py)


def default_search_dirs() -> list[Path]:
    """AUTOMATIC1111, Forge and ComfyUI model folders in common install places, and the HF hub cache."""
    home = Path.home()
    roots = [home, home / "AI", home / "ai", home / "apps", home / "Documents", home / "Desktop"]
    out = []
    for root in roots:
        for app in ("stable-diffusion-webui", "stable-diffusion-webui-forge", "sd-webui", "webui"):
            out.append(root / app / "models" / "Stable-diffusion")
        for app in ("ComfyUI", "comfyui", "ComfyUI_windows_portable/ComfyUI"):
            out += [root / app / "models" / sub for sub in ("checkpoints", "diffusion_models", "unet")]
    return out + [hf_hub_cache()]


def hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    hf_home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                       "huggingface")
    return Path(hf_home) / "hub"


def configured_dirs() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p.strip()]


@dataclass(frozen=True)
class SkippedModel:
    path: Path
    reason: str  # a ModelLoadError's message: names the file and what to do


@dataclass(frozen=True)
class ModelScan:
    found: list[FoundModel]
    skipped: list[SkippedModel]  # model files that cannot be used, each with why


def discover(extra_dirs=(), include_defaults: bool = True) -> list[FoundModel]:
    """Checkpoints in ``extra_dirs``, the $DIFFUSION_STUDIO_SD_DIRS folders and (optionally) the usual places."""
    return scan(extra_dirs, include_defaults).found


def scan(extra_dirs=(), include_defaults: bool = True) -> ModelScan:
    """Like ``discover``, and the files that look like models but cannot be used, with the reason for each.

    A damaged file never stops the scan: it is reported and the scan goes on.
    """
    dirs = [Path(d).expanduser() for d in extra_dirs] + configured_dirs()
    if include_defaults:
        dirs += default_search_dirs()
    found: dict[Path, FoundModel] = {}
    skipped: dict[Path, SkippedModel] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        walk = _scan_hub_cache if any(d.glob("models--*")) else _scan_folder
        for m in walk(d):
            target = found if isinstance(m, FoundModel) else skipped
            target.setdefault(_resolved(m.path), m)
    return ModelScan(sorted(found.values(), key=lambda m: (m.name.lower(), str(m.path))),
                     sorted(skipped.values(), key=lambda m: str(m.path)))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path


def classify_file(path: Path) -> FoundModel | None:
    """A FoundModel for a checkpoint file, or None when it is not a loadable SD 1.x/2.x/XL model."""
    m = _classify_file(path)
    return m if isinstance(m, FoundModel) else None


def _classify_file(path: Path) -> FoundModel | SkippedModel | None:
    """None for a text encoder or VAE of a flow model: a part, not a model to list (nor a bad file)."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return FoundModel(path, path.stem, "unknown", "single_file")
    try:
        shapes = read_key_shapes(path)
        flow = flow_kind(shapes)
        if flow is not None and flow.kind != "sd":
            if flow.kind in ("text_encoder", "vae"):
                return None
            return FoundModel(path, path.stem, flow.family, "single_file", variant=flow.variant)
        det = detect_keys(shapes, path.name)
    except ModelLoadError as exc:  # a LoRA, a VAE, a damaged file: the message says which
        return SkippedModel(path, str(exc))
    except OSError as exc:
        return SkippedModel(path, f"{path.name} cannot be read ({exc.strerror or exc})")
    return FoundModel(path, path.stem, det.family, "single_file", det.inpainting)


def classify_folder(folder: Path, name: str | None = None) -> FoundModel | None:
    m = _classify_folder(folder, name)
    return m if isinstance(m, FoundModel) else None


def _classify_folder(folder: Path, name: str | None = None) -> FoundModel | SkippedModel | None:
    """None when ``folder`` is no diffusers pipeline at all (a folder to search further)."""
    unet = folder / "unet"
    if (folder / "model_index.json").is_file() and (folder / "transformer").is_dir():
        return _classify_flow_folder(folder, name)
    try:
        weights = any(unet.glob("*.safetensors")) or any(unet.glob("*.bin"))
        if not (unet / "config.json").is_file() or not weights:
            return None  # not a pipeline, or a weightless config folder like studio/resources/sd_configs
        det = detect_diffusers_folder(folder)
    except ModelLoadError as exc:
        return SkippedModel(folder, str(exc))
    except OSError as exc:
        return SkippedModel(folder, f"{folder.name} cannot be read ({exc.strerror or exc})")
    return FoundModel(folder, name or folder.name, det.family, "diffusers", det.inpainting)


def _classify_flow_folder(folder: Path, name: str | None) -> FoundModel | SkippedModel:
    """A diffusers SD 3.x / Flux.1 / Z-Image pipeline folder."""
    from ..flow.detect import detect_folder

    try:
        det = detect_folder(folder)
    except ModelLoadError as exc:
        return SkippedModel(folder, str(exc))
    except OSError as exc:
        return SkippedModel(folder, f"{folder.name} cannot be read ({exc.strerror or exc})")
    return FoundModel(folder, name or folder.name, det.family, "diffusers", variant=det.variant)


def flow_kind(shapes):
    """What flow/detect.py makes of a header, or None when it is no flow model or part (then SD's detection
    says what the file is)."""
    from ..flow.detect import detect_shapes

    try:
        return detect_shapes(shapes)
    except ModelLoadError:
        return None


def _scan_folder(root: Path, depth: int = 0):
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_file() and entry.suffix.lower() in CHECKPOINT_SUFFIXES:
            found = _classify_file(entry)
            if found is not None:
                yield found
        elif entry.is_dir() and not entry.name.startswith("."):
            folder = _classify_folder(entry)
            if folder is not None:
                yield folder
            elif depth < MAX_DEPTH:
                yield from _scan_folder(entry, depth + 1)


def _newest_first(folders: list[Path]) -> list[Path]:
    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(folders, key=mtime, reverse=True)


def _scan_hub_cache(hub: Path):
    """models--org--name/snapshots/<revision>/: a diffusers pipeline, else single files; the newest revision wins."""
    for repo in sorted(hub.glob("models--*")):
        name = repo.name.removeprefix("models--").replace("--", "/")
        for snap in _newest_first(list((repo / "snapshots").glob("*")))[:1]:
            m = _classify_folder(snap, name)
            if m is not None:
                yield m
                continue
            for f in sorted(snap.glob("*.safetensors")):
                single = _classify_file(f)
                if single is None:
                    continue
                if isinstance(single, FoundModel):
                    single = replace(single, name=f"{name}/{f.stem}")
                yield single
