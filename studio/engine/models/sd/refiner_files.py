"""The SDXL refiner a request names: found, loaded once, kept beside the base model, and its hash.

``refiner`` may be a model key (``sd:<path>``), a path, or a name as AUTOMATIC1111 shows it: a
checkpoint's file stem (a diffusers folder's name), case-insensitive, looked for in the checkpoint
folders (beside the loaded base, Settings, the usual places). ``name [hash]`` as the parameters text
writes it is read as the name. The hash is AUTOMATIC1111's short hash: the first 10 hex digits of
the file's sha256 (a folder has none).

On the CPU both models stay loaded. On a GPU, the UNet that is not running moves to the CPU when
the device has too little free memory for the one about to run (``place_unets``).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ...devices import empty_cache, free_memory_bytes
from ...request import RequestError
from ..errors import ModelLoadError
from . import FAMILY_LABELS
from .discovery import FoundModel, classify_file, classify_folder, scan

SD_PREFIX = "sd:"
_HASH_SUFFIX = re.compile(r"\s*\[[0-9a-fA-F]{8,64}\]\s*$")  # "sd_xl_refiner_1.0 [7440042bbd]"
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadedRefiner:
    request_name: str  # as the request wrote it
    path: Path
    model: object  # a StableDiffusionModel of family "sdxl_refiner"
    short_hash: str | None  # AUTOMATIC1111's, None for a diffusers folder

    @property
    def title(self) -> str:
        """What the parameters text writes: ``stem [hash]``, as AUTOMATIC1111's short title."""
        name = self.path.stem if self.path.is_file() else self.path.name
        return f"{name} [{self.short_hash}]" if self.short_hash else name


def short_hash(path: Path) -> str:
    """AUTOMATIC1111's model short hash: sha256 of the whole file, first 10 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:10]


def find_refiner(name_or_path: str, folders: list[Path], include_defaults: bool) -> FoundModel:
    """The checkpoint ``name_or_path`` names; RequestError on the field "refiner" naming the closest names."""
    text = _HASH_SUFFIX.sub("", name_or_path.strip())
    if text.startswith(SD_PREFIX):
        text = text[len(SD_PREFIX):]
    as_path = Path(text).expanduser()
    if (as_path.suffix or "/" in text or "\\" in text) and as_path.exists():
        found = classify_folder(as_path) if as_path.is_dir() else classify_file(as_path)
        if found is None:
            raise RequestError("refiner", f"{as_path.name} is not a Stable Diffusion checkpoint the studio can load")
        return found
    candidates = scan(folders, include_defaults).found
    wanted = Path(text).stem.lower() if Path(text).suffix.lower() in (".safetensors", ".ckpt") else text.lower()
    by_name: dict[str, FoundModel] = {}
    for m in candidates:
        by_name.setdefault(m.name.lower(), m)
    if wanted in by_name:
        return by_name[wanted]
    refiners = [m.name for m in candidates if m.family == "sdxl_refiner"]
    lower = {n.lower(): n for n in refiners}
    close = difflib.get_close_matches(wanted, list(lower), n=3, cutoff=0.4)
    if close:
        hint = "closest: " + ", ".join(lower[c] for c in close)
    elif refiners:
        hint = "refiners found: " + ", ".join(refiners[:3])
    else:
        hint = "no SDXL refiner was found in the checkpoint folders; put it beside the base model or give its path"
    raise RequestError("refiner", f"no checkpoint named {text!r} ({hint})")


def check_refiner_family(found: FoundModel) -> None:
    if found.family not in ("sdxl_refiner", "unknown"):
        raise RequestError("refiner", f"{found.name} is an {FAMILY_LABELS.get(found.family, found.family)} model, "
                                      "not an SDXL refiner; choose a refiner (e.g. sd_xl_refiner_1.0) or none")


class RefinerSlot:
    """The one refiner kept loaded beside a base model; another name replaces it."""

    def __init__(self, folders: list[Path], include_defaults: bool):
        self.folders = folders
        self.include_defaults = include_defaults
        self.loaded: LoadedRefiner | None = None

    def get(self, name: str, base) -> LoadedRefiner:
        """The refiner ``name`` for ``base`` (loaded on its device and precision; cached)."""
        if base.info.family != "sdxl":
            raise RequestError("refiner", f"the SDXL refiner works with an SDXL base model, and {base.info.name!r} "
                                          f"is {FAMILY_LABELS.get(base.info.family, base.info.family)}; "
                                          "clear the refiner or load an SDXL model")
        if getattr(base.info, "inpainting", False):
            raise RequestError("refiner", f"{base.info.name!r} is an inpainting model; the refiner finishes regular "
                                          "SDXL runs: clear the refiner or load the regular SDXL base")
        if self.loaded is not None and self.loaded.request_name == name:
            return self.loaded
        found = find_refiner(name, self.folders, self.include_defaults)
        if self.loaded is not None and self.loaded.path == found.path:
            return self.loaded
        check_refiner_family(found)
        self.loaded = None  # let the old refiner go before the new one takes memory
        _make_room(base, _disk_bytes(found.path))
        model = self._load(found, base)
        if model.info.family != "sdxl_refiner":  # a .ckpt is classified only once loaded
            raise RequestError("refiner", f"{found.name} is not an SDXL refiner; choose a refiner or none")
        digest = short_hash(found.path) if found.path.is_file() else None
        self.loaded = LoadedRefiner(name, found.path, model, digest)
        return self.loaded

    @staticmethod
    def _load(found: FoundModel, base):
        from .load import load_sd_model

        try:
            return load_sd_model(found.path, device=base.device, dtype=base.weights_dtype, tiny_decoder=False)
        except ModelLoadError as exc:
            raise RequestError("refiner", f"could not load {found.name}: {exc}") from exc
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise RequestError("refiner", f"could not load {found.name}: {exc}") from exc


def refiner_infotext(refiner: LoadedRefiner, request) -> tuple[tuple[str, str], ...]:
    """The parameters-text pairs of a refined run, as AUTOMATIC1111 writes them."""
    return (("Refiner", refiner.title), ("Refiner switch at", f"{request.refiner_switch:g}"))


def _disk_bytes(path: Path) -> int:
    try:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        return sum(p.stat().st_size for p in files)
    except OSError:
        return 0


def _make_room(base, need: int) -> None:
    """Before a refiner loads on a GPU short of memory for it: the base's UNet waits on the CPU."""
    device = torch.device(base.device)
    free = free_memory_bytes(device) if device.type != "cpu" else None
    if free is not None and free < need * 1.2:
        base.unet.to("cpu")
        empty_cache(device)


def _bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def place_unets(active, idle) -> None:
    """Put ``active``'s UNet on its device, first moving ``idle``'s to the CPU when memory is short (GPUs only)."""
    device = torch.device(active.device)
    if device.type == "cpu" or next(active.unet.parameters()).device == device:
        return
    free = free_memory_bytes(device)
    need = int(_bytes(active.unet) * 1.2)  # and some room to run it
    if free is not None and free < need:
        idle.unet.to("cpu")
        empty_cache(device)
    active.unet.to(device)
