"""Reading checkpoint files without ever running code from them.

safetensors files are parsed from their JSON header (so truncation is caught
before any tensor is read); pickled ``.ckpt``/``.pt`` files go through
``torch.load(weights_only=True)``, which only rebuilds tensors and plain
containers and refuses anything else (a malicious pickle is rejected unrun).
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import torch

from ..registry import ModelLoadError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # a real header is a few hundred KB; more means garbage


def read_safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a .safetensors header, after checking the file is whole."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ModelLoadError(f"{path.name} is not a safetensors file: it is only {size} bytes long")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise ModelLoadError(
                f"{path.name} is not a valid safetensors file (header length {n} does not fit a {size}-byte file); "
                "it may be truncated or not a safetensors file at all")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"{path.name} has a corrupt safetensors header ({exc}); re-download the file") from exc
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name} has a corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    end, out = 0, {}
    for name, info in header.items():
        try:
            out[name] = (str(info["dtype"]), tuple(int(d) for d in info["shape"]))
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelLoadError(f"{path.name} has a corrupt safetensors header entry for {name!r}") from exc
    if 8 + n + end > size:
        raise ModelLoadError(
            f"{path.name} is truncated: its header describes {(8 + n + end) / 2**20:.1f} MiB "
            f"but the file holds {size / 2**20:.1f} MiB; the download probably stopped early, fetch it again")
    return out


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a single-file checkpoint, on the CPU; never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    if suffix in PICKLE_SUFFIXES:
        return _read_pickled(path)
    raise ModelLoadError(
        f"{path.name}: unsupported checkpoint type {suffix!r}; use .safetensors (or .ckpt/.pt holding only tensors)")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_safetensors_header(path)  # clear messages for truncation before safetensors' own
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{path.name} could not be read as safetensors ({exc}); the file may be damaged") from exc


def _read_pickled(path: Path) -> dict[str, torch.Tensor]:
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(
            f"{path.name} was refused: it is a pickle holding more than tensors, and unpickling it could run "
            "arbitrary code. Use a .safetensors version of this model, or convert the file with a tool you trust. "
            f"(torch said: {str(exc).splitlines()[0]})") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path.name} could not be read ({exc}); the file may be truncated or damaged") from exc
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # Lightning-style checkpoints wrap the weights
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} holds a {type(data).__name__}, not a dictionary of weights")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
