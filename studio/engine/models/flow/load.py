"""Loading an SD 3.x / Flux.1 / Z-Image model from whatever the user has: a diffusers folder, an all-in-one
checkpoint, or a diffusion-model-only file whose text encoders and VAE are found beside it (layout.py) or given.

``find_model_files`` decides which file is which part (a ModelFiles); the family's ``load_<family>`` builds the
networks from it (FLOW_LOADERS); the model then carries a LoadReport of what precision each part was read in.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import torch

from ...devices import pick_device
from ..errors import ModelLoadError
from . import FLOW_LABELS, FLOW_LOADERS
from .detect import Detected, detect_path
from .layout import (
    ENCODER_FOLDERS,
    VAE_FOLDERS,
    FoundPart,
    clip_role,
    missing_message,
    part_folders,
    pick_encoders,
    pick_vae,
    scan_parts,
)
from .model import FlowModel
from .parts import ModelFiles
from .precision import LoadReport, PartPrecision, part_precision

# The encoders each family reads its prompt with; SD 3.x runs without T5 (prompts followed less closely; its
# loader says so), so T5 is looked for but not required there.
REQUIRED_ROLES = {"sd3": ("clip_l", "clip_g"), "flux": ("clip_l", "t5xxl"), "zimage": ("qwen3",)}
OPTIONAL_ROLES = {"sd3": ("t5xxl",), "flux": (), "zimage": ()}
# Where a diffusers pipeline folder keeps each part.
PIPELINE_FOLDERS = {
    "sd3": {"clip_l": "text_encoder", "clip_g": "text_encoder_2", "t5xxl": "text_encoder_3"},
    "flux": {"clip_l": "text_encoder", "t5xxl": "text_encoder_2"},
    "zimage": {"qwen3": "text_encoder"},
}


def find_model_files(
    path: str | Path, *, text_encoders: Iterable[str | Path] = (), vae: str | Path | None = None, name: str = "",
) -> tuple[ModelFiles, Detected]:
    """Which file is which part of the model at ``path``; explicit encoder and VAE files win over found ones.

    A part that is nowhere is a ModelLoadError saying which file to put in which folder, or which flag to pass.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"no model at {path}")
    det = detect_path(path)
    if det.kind in ("text_encoder", "vae"):
        what = f"a {det.role} text encoder" if det.kind == "text_encoder" else "a VAE"
        flag = "--text-encoder" if det.kind == "text_encoder" else "--vae"
        raise ModelLoadError(f"{path.name} is {what}, not a model: load the diffusion model and give this file with "
                             f"{flag} {path}")
    if det.kind == "sd":
        raise ModelLoadError(f"{path.name} is a Stable Diffusion 1.x/2.x/XL model; load it as sd:{path}")
    encoders = _explicit_encoders(text_encoders)
    vae_path = _explicit_vae(vae)
    if det.kind == "diffusion_model" and not path.is_dir() or det.kind == "checkpoint":
        inside = dict(det.parts)
        roles = REQUIRED_ROLES[det.family] + OPTIONAL_ROLES[det.family]
        wanted = [r for r in roles if r not in encoders and r not in inside]
        need_vae = vae_path is None and "vae" not in inside
        if wanted or need_vae:
            found = _found_beside(path, bool(wanted), need_vae)
            encoders.update(pick_encoders(found, wanted))
            if need_vae:
                vae_path = pick_vae(found, det.family)
            missing = [r for r in wanted if r not in encoders and r in REQUIRED_ROLES[det.family]]
            if missing or (need_vae and vae_path is None):
                raise ModelLoadError(missing_message(path, det.family, missing, need_vae and vae_path is None))
    elif det.kind == "diffusion_model":  # a lone diffusers transformer folder: its parts must be given
        missing = [r for r in REQUIRED_ROLES[det.family] if r not in encoders]
        if missing or vae_path is None:
            raise ModelLoadError(missing_message(path, det.family, missing, vae_path is None))
    files = ModelFiles(det.family, path, encoders, vae_path, det.variant, name)
    return files, det


def _found_beside(path: Path, encoders: bool, vae: bool) -> list[FoundPart]:
    folders = (part_folders(path, ENCODER_FOLDERS) if encoders else []) + (part_folders(path, VAE_FOLDERS) if vae
                                                                           else [])
    return scan_parts(dict.fromkeys(folders), skip=path)


def _explicit_encoders(paths: Iterable[str | Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for given in paths:
        path, det = _given_part(given, "text_encoder", "text encoder",
                                "--text-encoder takes CLIP-L, CLIP-G, T5-XXL or Qwen3 files")
        role = clip_role(FoundPart(path, det, 0))
        if role == "clip":
            role = "clip_g" if "clip_l" in out else "clip_l"  # given in the usual order: CLIP-L, then CLIP-G
        if role in out:
            raise ModelLoadError(f"two {role} text encoders given ({out[role].name} and {path.name}); give one")
        out[role] = path
    return out


def _explicit_vae(given: str | Path | None) -> Path | None:
    if given is None or str(given) == "":
        return None
    return _given_part(given, "vae", "VAE", "--vae takes a 16-channel VAE file such as ae.safetensors")[0]


def _given_part(given: str | Path, kind: str, what: str, advice: str):
    """(path, detection) of a part named on the command line or in the picker, refused unless it is a ``kind``."""
    path = Path(given).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{what} file not found: {path}")
    det = detect_path(path)
    if det.kind != kind:
        raise ModelLoadError(f"{path.name} is not a {what} (it looks like {_kind_words(det)}); {advice}")
    return path, det


def _kind_words(det: Detected) -> str:
    if det.kind == "text_encoder":
        return f"a {det.role} text encoder"
    if det.kind in ("diffusion_model", "checkpoint", "pipeline"):
        return f"a {FLOW_LABELS.get(det.family, det.family)} model"
    return {"vae": "a VAE", "sd": "a Stable Diffusion checkpoint"}.get(det.kind, det.kind)


def flow_weights_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """bf16 on GPUs that have it (these models are trained in bf16; fp16 overflows in Flux), else fp16; fp32 on
    the CPU unless asked."""
    from ..sd.load import pick_weights_dtype

    if dtype is not None:
        return pick_weights_dtype(device, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device.type == "mps" else torch.float32


def load_flow_model(
    path: str | Path, *, text_encoders: Iterable[str | Path] = (), vae: str | Path | None = None,
    device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None, name: str = "",
    offload: str = "auto",
) -> FlowModel:
    """Find the parts, build the family's model in ``dtype``, place it on ``device`` as ``offload`` says
    (offload.py: "auto", "none", "model", "sequential"), and attach its LoadReport."""
    files, det = find_model_files(path, text_encoders=text_encoders, vae=vae, name=name)
    dev = pick_device(device)
    wdtype = flow_weights_dtype(dev, dtype)
    target = FLOW_LOADERS[files.family]
    module_name, fn_name = target.split(":")
    try:
        loader = getattr(importlib.import_module(module_name), fn_name)
    except (ImportError, AttributeError):
        raise ModelLoadError(f"{files.display_name} is a {FLOW_LABELS[files.family]} model, which this version of the "
                             "studio cannot run yet") from None
    model = loader(files, dev, wdtype)
    model.load_report = load_report(files, det, wdtype)
    place_model(model, offload)
    return model


def place_model(model: FlowModel, offload: str, free: int | None = None) -> None:
    """Place a loaded model's parts as ``offload`` says (again, when the setting changed) and say so on its card."""
    plan = model.place(offload, free)
    model.load_report = replace(getattr(model, "load_report", None) or LoadReport(), placement=plan.describe())


def load_report(files: ModelFiles, det: Detected, dtype: torch.dtype) -> LoadReport:
    """Each part's file and precision, from headers (a part whose header cannot be read is left out)."""
    sources: list[tuple[str, Path, str]] = []
    folders = PIPELINE_FOLDERS[files.family]
    if det.kind == "pipeline":
        sources.append(("transformer", files.transformer / "transformer", ""))
    else:
        sources.append(("transformer", files.transformer, det.prefix))
    inside = dict(det.parts)
    for role in REQUIRED_ROLES[files.family] + OPTIONAL_ROLES[files.family]:
        if role in files.text_encoders:
            sources.append((role, files.text_encoders[role], ""))
        elif role in inside:
            sources.append((role, files.transformer, inside[role]))
        elif det.kind == "pipeline" and (files.transformer / folders[role]).is_dir():
            sources.append((role, files.transformer / folders[role], ""))
    if files.vae is not None:
        sources.append(("vae", files.vae, ""))
    elif "vae" in inside:
        sources.append(("vae", files.transformer, inside["vae"]))
    elif det.kind == "pipeline" and (files.transformer / "vae").is_dir():
        sources.append(("vae", files.transformer / "vae", ""))
    parts: list[PartPrecision] = []
    for part, where, prefix in sources:
        try:
            parts.append(part_precision(part, where, dtype, prefix))
        except (ModelLoadError, OSError):
            continue
    return LoadReport(tuple(parts))
