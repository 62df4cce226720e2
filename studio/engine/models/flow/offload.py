"""Keeping a flow model's big parts off the GPU when they are not working, so large models fit smaller cards.

A family model groups its networks by use ("text_encoders" while encoding a prompt, "transformer" while
denoising, "vae" while decoding) and calls ``placement.use(group)`` before each use:

- ``none``: everything stays on the device (the fastest, when it fits);
- ``model``: one group at a time on the device, the others in CPU memory (a 12B transformer in fp8 beside a
  T5-XXL that would not both fit: the encoders leave the card once the prompt is encoded);
- ``sequential``: as ``model``, and the transformer itself streamed block by block (each block moved in just
  before it runs and out after), so a transformer larger than the card still runs, slowly.

``check_fits`` says, before anything is moved, whether a group fits the device's free memory, and what to do
when it does not (a clear error instead of an out-of-memory crash mid-run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from ...devices import empty_cache, free_memory_bytes
from ..errors import ModelLoadError

OFFLOAD_MODES = ("none", "model", "sequential")
HEADROOM = 1.15  # activations, attention buffers and the allocator's slack on top of the weights
STREAMED_GROUP = "transformer"


def module_bytes(modules: Iterable[torch.nn.Module]) -> int:
    """Bytes of the parameters and buffers of ``modules`` (each tensor counted once)."""
    seen, total = set(), 0
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.data_ptr() not in seen:
                seen.add(tensor.data_ptr())
                total += tensor.numel() * tensor.element_size()
    return total


def check_fits(nbytes: int, device: torch.device, what: str, free: int | None = None) -> None:
    """ModelLoadError when ``nbytes`` of weights (and headroom) exceed the free memory of a GPU ``device``."""
    if device.type == "cpu":
        return  # the operating system pages; a CPU run slows down rather than fails
    free = free_memory_bytes(device) if free is None else free
    if free is None or nbytes * HEADROOM <= free:
        return
    raise ModelLoadError(
        f"{what} needs {nbytes / 2**30:.1f} GiB on {device} but only {free / 2**30:.1f} GiB is free: close what "
        "else uses the GPU, keep the other parts in CPU memory while this one runs, or run on the CPU")


class Placement:
    """Where each group of a model's networks lives; ``use(group)`` before the group runs."""

    def __init__(self, groups: Mapping[str, Iterable[torch.nn.Module]], device: torch.device, mode: str = "none"):
        if mode not in OFFLOAD_MODES:
            raise ModelLoadError(f"unknown offload mode {mode!r}; choose one of {', '.join(OFFLOAD_MODES)}")
        self.groups = {name: [m for m in modules if m is not None] for name, modules in groups.items()}
        self.device = torch.device(device)
        self.mode = "none" if self.device.type == "cpu" else mode  # nothing to save on the CPU
        self.active: str | None = None
        self._hooks: list = []
        if self.mode == "sequential" and STREAMED_GROUP in self.groups:
            for module in self.groups[STREAMED_GROUP]:
                self._stream(module)

    def use(self, group: str) -> None:
        """Put ``group`` on the device (and, when offloading, the group used before back in CPU memory)."""
        if group == self.active:
            return
        if self.mode != "none" and self.active is not None:
            self._move(self.active, torch.device("cpu"))
            empty_cache(self.device)
        self._move(group, self.device)
        self.active = group

    def _move(self, group: str, device: torch.device) -> None:
        for module in self.groups.get(group, []):
            if self.mode == "sequential" and group == STREAMED_GROUP:
                _move_resident(module, device)  # its blocks come and go by themselves
            else:
                module.to(device)

    def _stream(self, module: torch.nn.Module) -> None:
        """The transformer's blocks (its top-level ModuleLists) move in before they run, and out after."""
        def arrive(block: torch.nn.Module, args) -> None:
            block.to(self.device)

        def leave(block: torch.nn.Module, args, output) -> None:
            block.to("cpu")

        for block in _blocks(module):
            block.to("cpu")
            self._hooks.append(block.register_forward_pre_hook(arrive))
            self._hooks.append(block.register_forward_hook(leave))

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()


def _blocks(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of a transformer: the entries of its own ModuleLists (not lists deeper inside)."""
    return [block for child in module.children() if isinstance(child, torch.nn.ModuleList) for block in child]


def _move_resident(module: torch.nn.Module, device: torch.device) -> None:
    """Move every weight of ``module`` that is not in one of its streamed blocks."""
    streamed = {id(t) for block in _blocks(module) for t in (*block.parameters(), *block.buffers())}
    for tensor in (*module.parameters(), *module.buffers()):
        if id(tensor) not in streamed:
            tensor.data = tensor.data.to(device)
