"""What Help -> About and ``--version`` tell: the studio's version, torch, the device, and where its files live.

Torch-free, so the window can use it: the window gets the torch facts from the engine's catalog once torch has
loaded there (``starting…`` until then), the command line from engine/devices.py (studio/version_report.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io.safe_json import load_json_file
from ..resource_files import resource_dir
from ..version import studio_version
from .paths import StudioPaths

STARTING = "starting…"
DEVICE_NAMES = {"cuda": "CUDA (NVIDIA GPU)", "mps": "MPS (Apple GPU)", "cpu": "CPU"}
NO_FOLDERS = "none set (Settings → Model folders)"
ALSO_SEARCHED = "AUTOMATIC1111, Forge and ComfyUI model folders in your home folder; the Hugging Face cache"


@dataclass(frozen=True)
class TorchFacts:
    version: str  # torch.__version__: "2.13.0+cpu" says a CPU build
    device: str  # what runs, as people say it ("CPU", "CUDA (NVIDIA GPU)")
    cuda: str  # engine/devices.py cuda_status(): found, or why not


def device_name(device: str) -> str:
    """``cuda:0`` -> "CUDA (NVIDIA GPU)"; a name it does not know stays as it is."""
    return DEVICE_NAMES.get(device.split(":")[0], device)


def about_facts(paths: StudioPaths, model_folders: Sequence[str], torch: TorchFacts | None) -> list[tuple[str, str]]:
    """(label, value) rows; ``torch`` None while the engine is still starting."""
    program = Path(__file__).resolve().parent.parent  # the studio package: a checkout's or an installed one
    rows = [("Diffusion Studio", studio_version()), ("program", str(program))]
    if torch is None:
        rows += [("torch", STARTING), ("device", STARTING), ("CUDA", STARTING)]
    else:
        rows += [("torch", torch.version or "unknown"), ("device", torch.device or "unknown"),
                 ("CUDA", torch.cuda or "unknown")]
    rows += [("settings", str(paths.settings_file)), ("history", str(paths.history_dir)),
             ("autosave", str(paths.autosave_dir)), ("embedded model", str(resource_dir("embedded"))),
             ("model folders", ", ".join(model_folders) or NO_FOLDERS), ("also searched", ALSO_SEARCHED)]
    return rows


def about_text(rows: Sequence[tuple[str, str]]) -> str:
    """The rows as aligned ``label: value`` lines (--version, the About box's copy)."""
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"{label + ':':<{width}} {value}" for label, value in rows)


def saved_settings_field(settings_file: Path, name: str) -> object:
    """One field of the saved settings as stored, or None; unlike load_settings, never sets a bad file aside
    (``--version`` only looks)."""
    try:
        data = load_json_file(settings_file)
    except (OSError, ValueError):
        return None
    return data.get(name) if isinstance(data, dict) else None


def saved_model_folders(settings_file: Path) -> tuple[str, ...]:
    folders = saved_settings_field(settings_file, "model_folders")
    return tuple(f for f in folders if isinstance(f, str) and f) if isinstance(folders, list) else ()
