"""Resumable training state on disk, and weight export to safetensors.

Checkpoints hold only tensors, numbers and strings, so they load with
``torch.load(weights_only=True)`` (no unpickling of arbitrary objects).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a crash mid-write never destroys the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def export_weights(state_dict: dict[str, torch.Tensor], path: Path, dtype: torch.dtype, meta: dict) -> None:
    """Save a state dict as safetensors (cast to ``dtype``), metadata as strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in state_dict.items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={k: json.dumps(v) for k, v in meta.items()})
    os.replace(tmp, path)
