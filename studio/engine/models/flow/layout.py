"""Finding a split flow model's text encoders and VAE where users keep them.

ComfyUI keeps the diffusion model in ``models/diffusion_models`` (or ``models/unet``), text encoders in
``models/text_encoders`` (or ``models/clip``) and VAEs in ``models/vae``; Forge uses ``models/text_encoder`` and
``models/VAE``. Files are recognised by what they hold (their headers), not their names: ``t5xxl_fp8_e4m3fn``,
``clip_l``, ``qwen_3_4b`` and ``ae`` are common names, but any name works. Names only break ties: which CLIP a
tiny or odd-width CLIP is, and which VAE belongs to which family (SD 3.x's and Flux's VAEs have the same shapes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from .detect import Detected, detect_path
from .tensors import WEIGHT_SUFFIXES

ENCODER_FOLDERS = ("text_encoders", "clip", "text_encoder")
VAE_FOLDERS = ("vae",)  # matched without case: ComfyUI's vae, Forge's VAE
MODELS_FOLDER_UP = 4  # models/diffusion_models/<sub>/<sub>/file: how far up the models folder may be
SUBFOLDER_DEPTH = 2  # users sort encoders into sub-folders (text_encoders/flux/...)

ROLE_HINTS = {
    "clip_l": re.compile(r"clip[_-]?l\b|clip[_-]?l[_-]|vit[_-]?l", re.I),
    "clip_g": re.compile(r"clip[_-]?g\b|clip[_-]?g[_-]|bigg|vit[_-]?g", re.I),
}
VAE_HINTS = {"flux": re.compile(r"^ae\b|flux", re.I), "zimage": re.compile(r"^ae\b|flux|z[_-]?image", re.I),
             "sd3": re.compile(r"sd3|sd_3|stable[_-]?diffusion[_-]?3", re.I)}
# What to put where, for the message when a part is missing.
USUAL_FILES = {
    "clip_l": "clip_l.safetensors", "clip_g": "clip_g.safetensors",
    "t5xxl": "t5xxl_fp16.safetensors (or t5xxl_fp8_e4m3fn.safetensors)", "qwen3": "qwen_3_4b.safetensors",
}
USUAL_VAES = {"flux": "ae.safetensors", "zimage": "ae.safetensors (Flux's VAE)",
              "sd3": "the SD 3.5 VAE (its vae/diffusion_pytorch_model.safetensors, renamed e.g. sd3.5_vae.safetensors)"}

_detected: dict[tuple[str, int, int], Detected | None] = {}


@dataclass(frozen=True)
class FoundPart:
    path: Path
    detected: Detected
    size: int  # bytes: among equals, the larger file is the higher precision


def models_roots(path: Path) -> list[Path]:
    """The ``models`` folders above ``path`` (nearest first), where ComfyUI, A1111 and Forge keep every part."""
    out = []
    for parent in list(path.resolve().parents)[:MODELS_FOLDER_UP]:
        if parent.name.lower() == "models":
            out.append(parent)
    return out


def part_folders(path: Path, names: Iterable[str]) -> list[Path]:
    """The folders ``names`` (any case) under each models folder above ``path``, then ``path``'s own folder."""
    wanted = {n.lower() for n in names}
    out: list[Path] = []
    for root in models_roots(path):
        try:
            out += sorted(c for c in root.iterdir() if c.is_dir() and c.name.lower() in wanted)
        except OSError:
            continue
    folder = path.parent
    if folder not in out:
        out.append(folder)
    return out


def scan_parts(folders: Iterable[Path], skip: Path | None = None) -> list[FoundPart]:
    """Text encoders and VAEs in ``folders`` (and their sub-folders), recognised from their headers."""
    out, seen = [], set()
    for folder in folders:
        for path in _weight_files(folder, SUBFOLDER_DEPTH):
            key = path.resolve()
            if key in seen or (skip is not None and key == skip.resolve()):
                continue
            seen.add(key)
            det = detect_cached(path)
            if det is not None and det.kind in ("text_encoder", "vae"):
                out.append(FoundPart(path, det, _size(path)))
    return out


def detect_cached(path: Path) -> Detected | None:
    """detect_path, remembered while the file is unchanged; None for a file that is not a model part."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _detected:
        try:
            _detected[key] = detect_path(path)
        except (ModelLoadError, OSError):
            _detected[key] = None
    return _detected[key]


def _weight_files(folder: Path, depth: int):
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in WEIGHT_SUFFIXES:
            yield entry
        elif entry.is_dir():
            if (entry / "config.json").is_file() and any(entry.glob("*.safetensors")):
                yield entry  # a transformers-style encoder folder (config + shards)
            elif depth > 0:
                yield from _weight_files(entry, depth - 1)


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in path.glob("*.safetensors"))
        return path.stat().st_size
    except OSError:
        return 0


def clip_role(part: FoundPart) -> str:
    """clip_l / clip_g for a CLIP, from its width, else its name; "clip" when neither says."""
    if part.detected.role != "clip":
        return part.detected.role
    for role, hint in ROLE_HINTS.items():
        if hint.search(part.path.name):
            return role
    return "clip"


def pick_encoders(parts: list[FoundPart], roles: Iterable[str]) -> dict[str, Path]:
    """One file per wanted role: a name that says the role first, then the largest (highest precision)."""
    roles = list(roles)
    by_role: dict[str, list[FoundPart]] = {}
    unsure: list[FoundPart] = []
    for part in parts:
        if part.detected.kind != "text_encoder":
            continue
        role = clip_role(part)
        (unsure if role == "clip" else by_role.setdefault(role, [])).append(part)
    # CLIPs that neither width nor name tells apart (tiny test models): fill the CLIP roles still empty; with
    # two to fill, the smaller file is CLIP-L
    unsure.sort(key=lambda p: p.size)
    empty = [r for r in ("clip_l", "clip_g") if r in roles and not by_role.get(r)]
    if len(empty) == 1 and unsure:
        by_role[empty[0]] = unsure[-1:]
    elif len(empty) == 2 and len(unsure) >= 2:
        by_role["clip_l"], by_role["clip_g"] = unsure[:1], unsure[-1:]
    out = {}
    for role in roles:
        candidates = by_role.get(role, [])
        if candidates:
            out[role] = max(candidates, key=lambda p: (role.split("_")[0] in p.path.name.lower(), p.size)).path
    return out


def pick_vae(parts: list[FoundPart], family: str) -> Path | None:
    """The 16-channel VAE for ``family``: the only one, or the one whose name says the family; ambiguity is an
    error (SD 3.x's and Flux's VAEs look alike, and the wrong one gives wrong colours)."""
    vaes = [p for p in parts if p.detected.kind == "vae"]
    if len(vaes) <= 1:
        return vaes[0].path if vaes else None
    hinted = [p for p in vaes if VAE_HINTS[family].search(p.path.stem)]
    if len(hinted) == 1:
        return hinted[0].path
    names = ", ".join(p.path.name for p in (hinted or vaes))
    raise ModelLoadError(f"several 16-channel VAEs could belong to this model ({names}); pass the right one with "
                         "--vae PATH (or pick it under Text encoders / VAE in the panel)")


def missing_message(model: Path, family: str, roles: Iterable[str], need_vae: bool) -> str:
    """Which file to put in which folder (or which flag to pass) for each missing part, on one line."""
    roots = models_roots(model)
    enc_dir = _target(roots, ENCODER_FOLDERS, model)
    vae_dir = _target(roots, VAE_FOLDERS, model)
    wants = [f"{USUAL_FILES[r]} in {enc_dir}" for r in roles]
    if need_vae:
        wants.append(f"{USUAL_VAES[family]} in {vae_dir}")
    what = ", ".join([*(f"its {r} text encoder" for r in roles), *(["its VAE"] if need_vae else [])])
    flags = " / ".join(f for f, on in (("--text-encoder PATH", bool(list(roles))), ("--vae PATH", need_vae)) if on)
    return (f"{model.name} needs {what}: put {'; '.join(wants)}, or give the file with {flags} (in the window: "
            "Text encoders / VAE… under the model)")


def _target(roots: list[Path], names: tuple[str, ...], model: Path) -> Path:
    for root in roots:
        for name in names:
            for child in (root / name, root / name.upper()):
                if child.is_dir():
                    return child
    return roots[0] / names[0] if roots else model.parent
