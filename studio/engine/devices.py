"""Which device runs the engine, how much memory it has free, and whether an error means it ran out.

One place for each, so the worker, the command line and the model loaders agree.
"""

from __future__ import annotations

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
