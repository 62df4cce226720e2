"""Reading checkpoint files without ever running code from them.

safetensors files are parsed from their JSON header (so truncation is caught
before any tensor is read); pickled ``.ckpt``/``.pt`` files go through
``torch.load(weights_only=True)``, which only rebuilds tensors and plain
containers and refuses anything else (a malicious pickle is rejected unrun).
"""

from __future__ import annotations

import pickle
import re
import struct
from pathlib import Path

import torch

from ....io.safe_json import JSONFileError, loads_limited
from ..errors import ModelLoadError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # a real header is a few hundred KB; more means garbage
# What torch.load raises on a damaged or foreign file, besides UnpicklingError (found by fuzzing: the
# legacy reader unpacks whatever bytes it meets).
PICKLE_READ_ERRORS = (RuntimeError, EOFError, OSError, ValueError, MemoryError, struct.error, IndexError, KeyError,
                      TypeError, AttributeError, OverflowError)
HEADER_DEPTH = 4  # header object -> entry -> shape / offsets list: 3 levels, and one to spare


def read_safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a .safetensors header, after checking the file is whole.

    Every way the header can be wrong (length, JSON, nesting, a non-finite number, an entry of the
    wrong shape) is a ModelLoadError naming the file; nothing here reads a tensor.
    """
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
            header = loads_limited(f.read(n), max_depth=HEADER_DEPTH, max_bytes=MAX_HEADER_BYTES)
        except JSONFileError as exc:
            raise ModelLoadError(f"{path.name} has a corrupt safetensors header (it {exc}); "
                                 "download the file again") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name} has a corrupt safetensors header (not a JSON object); "
                             "download the file again")
    header.pop("__metadata__", None)
    end, out = 0, {}
    for name, info in header.items():
        entry = _header_entry(info)
        if entry is None:
            raise ModelLoadError(f"{path.name} has a corrupt safetensors header entry for {name[:80]!r}; "
                                 "download the file again")
        out[name], stop = entry
        end = max(end, stop)
    if 8 + n + end > size:
        raise ModelLoadError(
            f"{path.name} is truncated: its header describes {_amount(8 + n + end)} "
            f"but the file holds {_amount(size)}; the download probably stopped early, fetch it again")
    return out


def _amount(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size:,} bytes"


def _header_entry(info: object) -> tuple[tuple[str, tuple[int, ...]], int] | None:
    """((dtype, shape), end offset) of one header entry, or None when it is not what the format says."""
    if not isinstance(info, dict):
        return None
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or not isinstance(shape, list) or not isinstance(offsets, list):
        return None
    if not all(_is_count(d) for d in shape) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        return None
    if offsets[0] > offsets[1]:
        return None
    return (dtype, tuple(shape)), offsets[1]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def refusal_message(name: str, torch_message: str) -> str:
    """The studio's words for a pickle that weights_only loading refused; torch's text is only mined for the name
    of the callable the pickle asked for."""
    found = re.search(r"GLOBAL ([A-Za-z_][\w.]{0,100})", torch_message)
    asks = f"it asks to run {found.group(1)}" if found else "it holds more than tensors, or is damaged"
    return (f"{name} was refused: {asks}. Unpickling such a file could run arbitrary code, so the studio never "
            "does. Use a .safetensors version of this model, or convert the file with a tool you trust.")


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


def load_pickle(path: Path) -> object:
    """What a ``.ckpt``/``.pt``/``.bin`` file holds, through ``torch.load(weights_only=True)``: tensors and plain
    containers only. A refused or damaged file is a ModelLoadError naming it."""
    # torch's own messages are not shown: they carry terminal escape codes and advice on how to
    # load the file anyway (weights_only=False), which is exactly what must not be done with it.
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as exc:
        raise ModelLoadError(refusal_message(path.name, str(exc))) from None
    except PICKLE_READ_ERRORS as exc:
        raise ModelLoadError(
            f"{path.name} could not be read as a PyTorch checkpoint ({type(exc).__name__}); the file may be "
            "truncated or damaged: download it again, or use a .safetensors version of the model") from None


def _read_pickled(path: Path) -> dict[str, torch.Tensor]:
    data = load_pickle(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # Lightning-style checkpoints wrap the weights
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name} holds a {type(data).__name__}, not a dictionary of weights")
    return {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
