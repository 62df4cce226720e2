"""Find the LoRAs, embeddings, ControlNets and upscalers a user already keeps on disk, and resolve their names.

The folders are AUTOMATIC1111's and ComfyUI's (``models/Lora``, ``models/loras``,
``embeddings``, ``models/ControlNet``, ``models/ESRGAN``, ``models/upscale_models``, ...), looked for
beside each checkpoint folder the user has (``<webui>/models/Stable-diffusion`` -> ``<webui>/models/Lora``),
in the folders set in Settings and in the usual install places. Names resolve as
AUTOMATIC1111 resolves them: a file's stem, case-insensitive, the first found wins.
Reads file names only: no file is opened here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...adapter_names import KIND_LABELS, match_name, not_found_message  # noqa: F401 (KIND_LABELS: kept here too)
from ...request import RequestError
from .discovery import MAX_DEPTH, configured_dirs, default_search_dirs

KINDS = ("lora", "embedding", "controlnet", "upscaler")
# Sub-folder names each tool uses, relative to its models/ folder (embeddings: to the webui root too).
FOLDER_NAMES = {
    "lora": ("Lora", "loras", "LyCORIS", "lora"),
    "embedding": ("embeddings",),
    "controlnet": ("ControlNet", "controlnet", "T2I-Adapter"),
    # AUTOMATIC1111 keeps each upscaler family in its own folder; ComfyUI has one.
    "upscaler": ("ESRGAN", "RealESRGAN", "SwinIR", "DAT", "HAT", "ScuNET", "upscale_models"),
}
SUFFIXES = {
    "lora": (".safetensors", ".pt", ".ckpt"),
    "embedding": (".safetensors", ".pt", ".bin"),
    "controlnet": (".safetensors", ".pth", ".ckpt", ".bin"),
    "upscaler": (".safetensors", ".pth", ".pt"),
}


@dataclass(frozen=True)
class AdapterFile:
    kind: str  # one of KINDS
    name: str  # what a prompt or a request uses: the file stem (a diffusers folder's name)
    path: Path


class AdapterNotFound(RequestError):
    """A name in the prompt or a request that matches no file; the message names the closest ones."""


def adapter_dirs(kind: str, model_folders: tuple[str | Path, ...] = (), checkpoint: str | Path | None = None,
                 include_defaults: bool = True) -> list[Path]:
    """Folders that may hold adapters of ``kind``, most specific first (existing ones only).

    Each checkpoint folder (Settings, $DIFFUSION_STUDIO_SD_DIRS, the usual places, and the folder of the
    loaded checkpoint) is looked at as a tool's layout: its own sub-folders, its siblings under
    ``models/``, and for embeddings the webui root above ``models/``.
    """
    bases: list[Path] = []
    if checkpoint is not None:
        bases.append(Path(checkpoint).expanduser().parent)
    bases += [Path(f).expanduser() for f in model_folders] + configured_dirs()
    if include_defaults:
        bases += default_search_dirs()
    out: list[Path] = []
    for base in bases:
        for candidate in _candidates(kind, base):
            if candidate not in out and candidate.is_dir():
                out.append(candidate)
    return out


def _candidates(kind: str, base: Path) -> list[Path]:
    names = FOLDER_NAMES[kind]
    out = []
    if base.name.lower() in {n.lower() for n in names}:
        out.append(base)  # the user pointed straight at a Lora / embeddings / ControlNet folder
    out += [base / n for n in names]  # a models/ folder, or a webui root (embeddings)
    out += [base.parent / n for n in names]  # siblings: models/Stable-diffusion -> models/Lora
    out += [base.parent.parent / n for n in names]  # the webui root above models/: embeddings
    return out


def list_adapters(kind: str, dirs: list[Path]) -> list[AdapterFile]:
    """Every adapter file of ``kind`` under ``dirs`` (sub-folders too), sorted by name; first of a name wins."""
    seen: dict[str, AdapterFile] = {}
    for d in dirs:
        for path in _walk(kind, d, 0):
            name = path.stem if path.is_file() else path.name
            seen.setdefault(name.lower(), AdapterFile(kind, name, path))
    return sorted(seen.values(), key=lambda a: a.name.lower())


def _walk(kind: str, folder: Path, depth: int):
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_file() and entry.suffix.lower() in SUFFIXES[kind]:
                yield entry
            elif entry.is_dir():
                if kind == "controlnet" and (entry / "config.json").is_file():
                    yield entry  # a diffusers ControlNet folder
                elif depth < MAX_DEPTH:
                    yield from _walk(kind, entry, depth + 1)
        except OSError:
            continue


def resolve_adapter(kind: str, name_or_path: str, available: list[AdapterFile],
                    allow_paths: bool = True) -> AdapterFile:
    """The adapter a prompt or a request names: an existing path (unless ``allow_paths`` is off, as on a server,
    where a client's text must never open a file outside the listed folders), else a name (case-insensitive).

    Raises AdapterNotFound naming the closest names, so a typo is one glance to fix.
    """
    text = name_or_path.strip()
    as_path = Path(text).expanduser()
    if allow_paths and text and (as_path.suffix or "/" in text or "\\" in text) and as_path.exists():
        return AdapterFile(kind, as_path.stem if as_path.is_file() else as_path.name, as_path)
    found = match_name(text, [a.name for a in available])
    if found is not None:
        return next(a for a in available if a.name == found)
    field = {"controlnet": "controlnets", "upscaler": "upscaler"}.get(kind, "prompt")
    raise AdapterNotFound(field, not_found_message(kind, text, [a.name for a in available]))


class AdapterLibrary:
    """The adapter files one engine session can use: listed per kind, again when a folder changes or on ``rescan``."""

    def __init__(self, model_folders: tuple[str | Path, ...] = (), checkpoint: str | Path | None = None,
                 include_defaults: bool = True, kind_folders: dict[str, tuple[str | Path, ...]] | None = None,
                 allow_paths: bool = True):
        self.model_folders = tuple(model_folders)
        self.allow_paths = allow_paths  # False: names only, never a path (a server's clients name files)
        self.checkpoint = checkpoint
        self.include_defaults = include_defaults
        # Folders holding one kind, whatever their names (the command line's --lora-dir): searched first.
        self.kind_folders = {k: tuple(v) for k, v in (kind_folders or {}).items()}
        self._lists: dict[str, list[AdapterFile]] = {}
        self._stamps: dict[str, tuple[tuple[Path, int], ...]] = {}  # each listed folder's mtime when listed

    def for_checkpoint(self, checkpoint: str | Path | None) -> AdapterLibrary:
        """The same folders plus those beside ``checkpoint`` (the model just loaded)."""
        return AdapterLibrary(self.model_folders, checkpoint, self.include_defaults, self.kind_folders,
                              self.allow_paths)

    def rescan(self) -> None:
        self._lists.clear()

    def list(self, kind: str) -> list[AdapterFile]:
        """The files of ``kind``; listed again when one of its folders changed (a file added, as A1111 notices
        new embeddings: a prompt word names one without any error to trigger a new look)."""
        own = [Path(d).expanduser() for d in self.kind_folders.get(kind, ())]
        dirs = own + [d for d in adapter_dirs(kind, self.model_folders, self.checkpoint, self.include_defaults)
                      if d not in own]
        stamp = _folder_stamps(dirs)
        if kind not in self._lists or self._stamps.get(kind) != stamp:
            self._lists[kind] = list_adapters(kind, dirs)
            self._stamps[kind] = stamp
        return self._lists[kind]

    def find(self, kind: str, name_or_path: str) -> AdapterFile:
        """Resolve a name (or path); a miss lists the folders again once, in case a file was just added."""
        try:
            return resolve_adapter(kind, name_or_path, self.list(kind), self.allow_paths)
        except AdapterNotFound:
            self._lists.pop(kind, None)
            return resolve_adapter(kind, name_or_path, self.list(kind), self.allow_paths)


def _folder_stamps(dirs: list[Path]) -> tuple[tuple[Path, int], ...]:
    """Each folder with its modification time: a file added or removed directly in it changes the stamp."""
    out = []
    for d in dirs:
        try:
            out.append((d, d.stat().st_mtime_ns))
        except OSError:
            out.append((d, -1))
    return tuple(out)
