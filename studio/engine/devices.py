"""Which device runs the engine, how much memory it has free, and whether an error means it ran out.

One place for each, so the worker, the command line and the model loaders agree.
"""

from __future__ import annotations

import os
import sys

import torch

# How the allocators word running out: CUDA and MPS say "out of memory"; the CPU allocator says
# "DefaultCPUAllocator: can't allocate memory" (or "not enough memory" in older torch builds).
OOM_PHRASES = ("out of memory", "can't allocate memory", "not enough memory", "cannot allocate memory")


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU; an unavailable GPU asked for by name falls back to
    the CPU (a settings file from another machine must not stop the engine)."""
    name = str(preference)
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    if name == "mps" and not mps_ok:
        return torch.device("cpu")
    try:
        return torch.device(name)
    except RuntimeError:  # not a device name torch knows
        return torch.device("cpu")


def cuda_status() -> str:
    """Whether this torch can run on an NVIDIA GPU, and if not, why: the About box and ``--version`` show it.

    A CPU build of torch (``+cpu``, ``torch.version.cuda is None``) never finds one whatever the machine has,
    which is what pip gives by default on some platforms; a CUDA build finds none without a driver or device.
    """
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        more = f" and {count - 1} more" if count > 1 else ""
        backend = f"ROCm {torch.version.hip}" if getattr(torch.version, "hip", None) else f"CUDA {torch.version.cuda}"
        return f"found: {torch.cuda.get_device_name(0)}{more} ({backend})"
    if sys.platform == "darwin":
        return "not on macOS: torch uses the Apple GPU through MPS instead"
    if torch.version.cuda is None and not getattr(torch.version, "hip", None):
        return (f"not found: torch {torch.__version__} is a CPU-only build; install the CUDA build of torch "
                "first to use an NVIDIA GPU (docs/install.md)")
    return f"not found: torch {torch.__version__} is built for CUDA {torch.version.cuda}, but {_cuda_start_error()}"


def _cuda_start_error() -> str:
    # is_available() only says False; starting CUDA says why (no driver, a driver too old, no device visible).
    try:
        torch.cuda.init()
    except Exception as exc:  # RuntimeError or AssertionError, worded by the CUDA runtime
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"CUDA could not start: {reason}"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "no CUDA device is visible" + (f" (CUDA_VISIBLE_DEVICES={hidden!r})" if hidden is not None else "")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a device (GPU or CPU) ran out of memory."""
    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError since 2.5
        return True
    return isinstance(exc, RuntimeError) and any(p in str(exc).lower() for p in OOM_PHRASES)


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory a new allocation on ``device`` can still get, or None when it cannot be told."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        return _available_ram()
    return None


def _available_ram() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def empty_cache(device: torch.device) -> None:
    """Hand cached GPU blocks back before a retry; nothing to do on the CPU."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
