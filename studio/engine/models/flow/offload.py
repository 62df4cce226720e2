"""Keeping a flow model's big parts off the GPU when they are not working, so large models fit smaller cards.

A family model groups its networks by use ("text_encoders" while encoding a prompt, "transformer" while
denoising, "vae" while encoding or decoding images) and calls ``placement.use(group)`` before each use:

- ``none``: everything stays on the device (the fastest, when it fits);
- ``model``: one group at a time on the device, the others in CPU memory (a 12B transformer beside a T5-XXL
  that would not both fit: the encoders leave the card once the prompt is encoded);
- ``sequential``: as ``model``, and the transformer's and text encoders' repeated blocks streamed one by one
  (each block copied in just before it runs and dropped after), so a transformer larger than the card still
  runs, slowly.

``choose_placement`` picks the mode at load ("auto": the fastest that fits the device's free memory) and
raises a ModelLoadError saying what is needed, what is free and what to do when the chosen mode cannot fit,
instead of an out-of-memory crash mid-run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

from ...devices import empty_cache, free_memory_bytes, is_out_of_memory
from ...memory_modes import OFFLOAD_MODES  # what a user may ask for
from ..errors import ModelLoadError

PLACEMENTS = ("none", "model", "sequential")  # what "auto" resolves to
HEADROOM = 1.15  # the allocator's slack and per-layer temporaries on top of the weights
WORKING_BYTES = 2**30  # activations of a 1024 px step and a VAE decode (tiled above 1536 px), beside the weights
STREAMED_GROUPS = ("transformer", "text_encoders")  # whose blocks stream in "sequential"
MODE_WORDS = {"none": "everything on the GPU", "model": "one part at a time on the GPU (model offload)",
              "sequential": "the transformer's blocks streamed to the GPU (sequential offload)"}
GIB = 2**30


@dataclass(frozen=True)
class GroupSize:
    """Bytes of one group: all of it, and what streaming keeps on the device (the part outside its blocks plus
    the largest block)."""

    total: int
    streamed: int


@dataclass(frozen=True)
class MemoryPlan:
    """The placement chosen at load and why, for the model card."""

    mode: str  # one of PLACEMENTS
    reason: str
    on_gpu: bool = True  # False: the model runs on the CPU, where there is nothing to place

    def describe(self) -> str:
        """The model card's line ("" on the CPU)."""
        return f"GPU memory: {MODE_WORDS[self.mode]}: {self.reason}" if self.on_gpu else ""


def module_bytes(modules: Iterable[torch.nn.Module]) -> int:
    """Bytes of the parameters and buffers of ``modules`` (each tensor counted once)."""
    seen: set[int] = set()
    return sum(_tensor_bytes(t, seen) for m in modules for t in (*m.parameters(), *m.buffers()))


def _tensor_bytes(tensor: torch.Tensor, seen: set[int]) -> int:
    if id(tensor) in seen:
        return 0
    seen.add(id(tensor))
    return tensor.numel() * tensor.element_size()


def group_sizes(groups: Mapping[str, Iterable[torch.nn.Module]]) -> dict[str, GroupSize]:
    out = {}
    for name, modules in groups.items():
        modules = [m for m in modules if m is not None]
        total = module_bytes(modules)
        blocks = [b for m in modules for b in blocks_of(m)]
        in_blocks = module_bytes(blocks)
        largest = max((module_bytes([b]) for b in blocks), default=0)
        out[name] = GroupSize(total, total - in_blocks + largest)
    return out


def needed_bytes(mode: str, sizes: Mapping[str, GroupSize]) -> int:
    """Device memory ``mode`` needs at its peak: the weights on the device at once, with headroom, plus the
    working memory of a step."""
    if mode == "none":
        weights = sum(s.total for s in sizes.values())
    elif mode == "model":
        weights = max((s.total for s in sizes.values()), default=0)
    else:
        weights = max((s.streamed if name in STREAMED_GROUPS else s.total for name, s in sizes.items()), default=0)
    return int(weights * HEADROOM) + WORKING_BYTES


def choose_placement(requested: str, sizes: Mapping[str, GroupSize], device: torch.device,
                     free: int | None = None) -> MemoryPlan:
    """The placement for a model of ``sizes`` on ``device`` (``free``: its free bytes; measured when None).

    "auto" takes the fastest placement that fits; a mode asked for by name is kept when it fits. Either way a
    model that cannot fit is a ModelLoadError naming what it needs, what is free, and what to do.
    """
    if requested not in OFFLOAD_MODES:
        raise ModelLoadError(f"unknown GPU memory setting {requested!r}; choose one of {', '.join(OFFLOAD_MODES)}")
    device = torch.device(device)
    if device.type == "cpu":
        return MemoryPlan("none", "the model runs on the CPU, in the memory it is kept in", on_gpu=False)
    free = free_memory_bytes(device) if free is None else free
    if free is None:  # Apple's MPS does not say
        mode = "none" if requested == "auto" else requested
        return MemoryPlan(mode, f"{device.type} does not report its free memory; "
                                + ("set in Settings" if requested != "auto" else "assumed to fit"))
    need = {mode: needed_bytes(mode, sizes) for mode in PLACEMENTS}
    if requested != "auto":
        if need[requested] > free:
            raise ModelLoadError(_too_big(requested, need, free, device))
        return MemoryPlan(requested, f"set in Settings ({_gib(need[requested])} needed, {_gib(free)} free)")
    for mode in PLACEMENTS:
        if need[mode] <= free:
            why = {"none": "the whole model fits",
                   "model": "the whole model does not fit, its largest part does",
                   "sequential": "not even its largest part fits, one block at a time does"}[mode]
            return MemoryPlan(mode, f"{why} ({_gib(need[mode])} needed, {_gib(free)} free)")
    raise ModelLoadError(_too_big("sequential", need, free, device))


def _too_big(mode: str, need: Mapping[str, int], free: int, device: torch.device) -> str:
    lighter = [m for m in PLACEMENTS[PLACEMENTS.index(mode) + 1:] if need[m] <= free]
    if lighter:
        advice = f"choose '{MODE_WORDS[lighter[0]]}' (or Automatic) in Settings → GPU memory"
    else:
        advice = ("even streaming one block at a time needs more: close what else uses the GPU, load a smaller "
                  "file (fp8 or GGUF Q4) of the model or its text encoders, or choose the CPU in Settings → Device")
    return (f"the model needs {_gib(need[mode])} of GPU memory with {MODE_WORDS[mode]}, but only {_gib(free)} "
            f"is free on {device}: {advice}")


def _gib(nbytes: int) -> str:
    return f"{nbytes / GIB:.1f} GiB"


class Placement:
    """Where each group of a model's networks lives; ``use(group)`` before the group runs.

    ``mode`` is the resolved placement (see ``choose_placement``); ``storage`` is where parts wait while
    another runs (CPU memory). ``observer(what, arrived)`` is called after each move (arrived: onto the device,
    else back to storage), so a test or a benchmark sees what was on the device when (``what`` is a group name,
    or "group/block index" for a streamed block).
    """

    def __init__(self, groups: Mapping[str, Iterable[torch.nn.Module]], device: torch.device, mode: str = "none",
                 *, storage: torch.device | str = "cpu",
                 observer: Callable[[str, bool], None] | None = None):
        if mode not in PLACEMENTS:
            raise ModelLoadError(f"unknown placement {mode!r}; choose one of {', '.join(PLACEMENTS)}")
        self.groups = {name: [m for m in modules if m is not None] for name, modules in groups.items()}
        self.device = torch.device(device)
        self.storage = torch.device(storage)
        self.mode = mode
        self.observer = observer
        self.active: str | None = None
        self._hooks: list = []
        self._streamed: set[int] = set()  # ids of the modules whose blocks stream
        if mode == "none":
            for group in self.groups:  # everything on the device now: a model that cannot fit fails at load
                self._move(group, True)
        else:
            for module in (m for modules in self.groups.values() for m in modules):
                module.to(self.storage)  # all wait in storage (a placement before this one may have left some out)
        if mode == "sequential":
            for group in STREAMED_GROUPS:
                for module in self.groups.get(group, []):
                    self._stream(group, module)

    def use(self, group: str) -> None:
        """Put ``group`` on the device (and, when offloading, the group used before back in storage)."""
        if self.mode == "none" or group == self.active:
            return
        if self.active is not None:
            self._move(self.active, False)
            empty_cache(self.device)
        self._move(group, True)
        self.active = group

    def _move(self, group: str, onto_device: bool) -> None:
        target = self.device if onto_device else self.storage
        for module in self.groups.get(group, []):
            try:
                if id(module) in self._streamed and onto_device:
                    _move_outside_blocks(module, target)  # its blocks come and go by themselves
                else:
                    module.to(target)  # (back to storage: a block an error left on the device goes too)
            except RuntimeError as exc:
                if not is_out_of_memory(exc):
                    raise
                module.to(self.storage)
                empty_cache(self.device)
                part = group.replace("_", " ")
                raise ModelLoadError(f"the model's {part} did not fit in the free memory of {target}: choose a "
                                     "lighter setting in Settings → GPU memory, or close what else uses the GPU") \
                    from exc
        self._observe(group, onto_device)

    def _stream(self, group: str, module: torch.nn.Module) -> None:
        """Each block of ``module`` is copied to the device just before it runs; after, the copy is dropped and
        the block points at its weights in storage again (inference does not change them: nothing to copy back).
        """
        self._streamed.add(id(module))
        for index, block in enumerate(blocks_of(module)):
            block.to(self.storage)
            kept: list[tuple[torch.nn.Module, str, torch.Tensor]] = []
            label = f"{group}/{index}"

            def arrive(block: torch.nn.Module, args, kept=kept, label=label) -> None:
                for owner, name, data in kept:  # an error stopped the last forward before ``leave``
                    _set(owner, name, data)
                kept.clear()
                for owner, name, tensor in _tensors(block):
                    kept.append((owner, name, tensor.data))
                    _set(owner, name, tensor.data.to(self.device, non_blocking=True))
                self._observe(label, True)

            def leave(block: torch.nn.Module, args, output, kept=kept, label=label) -> None:
                for owner, name, data in kept:
                    _set(owner, name, data)
                kept.clear()
                self._observe(label, False)

            self._hooks.append(block.register_forward_pre_hook(arrive))
            self._hooks.append(block.register_forward_hook(leave))

    def _observe(self, what: str, arrived: bool) -> None:
        if self.observer is not None:
            self.observer(what, arrived)

    def close(self) -> None:
        """Take the streaming hooks off (the model is being replaced)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self._streamed.clear()


def blocks_of(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of a network: the entries of its outermost ModuleLists (a transformer's
    ``transformer_blocks``, T5's ``encoder.block``, CLIP's ``encoder.layers``), not lists inside a block."""
    found: list[torch.nn.Module] = []
    inside: set[int] = set()
    for _, child in module.named_modules():
        if id(child) in inside:
            continue
        if isinstance(child, torch.nn.ModuleList) and child is not module:
            found.extend(child)
            inside.update(id(m) for entry in child for m in entry.modules())
    return found


def _tensors(module: torch.nn.Module):
    """(owner, name, tensor) of each parameter and buffer of ``module``, each tensor once."""
    seen: set[int] = set()
    for owner in module.modules():
        for name, tensor in (*owner._parameters.items(), *owner._buffers.items()):
            if tensor is not None and id(tensor) not in seen:
                seen.add(id(tensor))
                yield owner, name, tensor


def _set(owner: torch.nn.Module, name: str, data: torch.Tensor) -> None:
    tensor = owner._parameters.get(name)
    if tensor is not None:
        tensor.data = data  # the Parameter object stays: optimisers and tied weights still point at it
    else:
        owner._buffers[name] = data


def _move_outside_blocks(module: torch.nn.Module, device: torch.device) -> None:
    """Move every weight of ``module`` that is not in one of its streamed blocks."""
    streamed = {id(t) for block in blocks_of(module) for _, _, t in _tensors(block)}
    for owner, name, tensor in _tensors(module):
        if id(tensor) not in streamed:
            _set(owner, name, tensor.data.to(device))
