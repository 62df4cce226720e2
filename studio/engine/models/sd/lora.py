"""LoRAs merged into a Stable Diffusion model's weights, and taken out again exactly.

Merging costs nothing per step: the networks run as they always do. Before a weight is
first changed its original is copied to the CPU; when the prompt's set of LoRAs (or their
weights) changes, every changed weight gets its original back, bit for bit, and the new
set is merged from there, so no rounding ever accumulates. The same set twice in a row is
not merged again. Parsed files are kept by path, size and modification time.

A file that cannot be read, a LoRA for another model family, or one whose keys match
nothing in this model is refused before any weight changes, with a message naming the file.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from ...request import RequestError
from . import FAMILY_LABELS
from .lora_files import LoraFileError, LoraLayer, parse_lora, read_lora_tensors
from .lora_keys import Target, build_targets, guess_family, match_layers
from .lora_math import LoraShapeError, layer_delta

log = logging.getLogger(__name__)
KEEP_PARSED = 8  # files kept parsed in memory (a LoRA is 10-200 MB of tensors)


@dataclass(frozen=True)
class LoraUse:
    """One LoRA the prompt asks for."""

    path: Path
    name: str  # as the prompt wrote it (for messages)
    te_weight: float = 1.0
    unet_weight: float = 1.0


@dataclass(frozen=True, eq=False)
class _Parsed:
    matched: list[tuple[LoraLayer, Target]]
    notice: str  # what of the file was left out, or ""


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise RequestError("prompt", f"LoRA file {path} cannot be read ({exc.strerror or exc})") from None
    return str(path.resolve()), st.st_size, st.st_mtime_ns


class LoraWeights:
    """The LoRA state of one model's networks: which set is merged, and the originals of what it changed."""

    def __init__(self, unet: torch.nn.Module, text_encoders: list[torch.nn.Module], family: str, model_name: str):
        self.unet = unet
        self.text_encoders = text_encoders
        self.family = family
        self.model_name = model_name
        self._table: dict[str, Target] | None = None  # built on first use: most runs use no LoRA
        self._parsed: OrderedDict[tuple, _Parsed] = OrderedDict()
        self._originals: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(param) -> (param, CPU copy)
        self._active: tuple = ()
        self.notices: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self._active)

    def activate(self, uses: list[LoraUse]) -> tuple[str, ...]:
        """Make exactly ``uses`` merged (none: the original weights). Returns notices on partly matching files.

        Raises RequestError naming the file when one cannot be used; the weights are then as before the
        call (or, when a merge itself failed, the originals).
        """
        stamps = [_stamp(use.path) for use in uses]
        key = tuple((s, u.te_weight, u.unet_weight) for s, u in zip(stamps, uses, strict=True))
        if key == self._active:
            return self.notices
        parsed = [self._parse(use, stamp) for use, stamp in zip(uses, stamps, strict=True)]
        self.restore()
        try:
            self._merge(uses, parsed)
        except BaseException:
            self.restore()
            raise
        self._active = key
        self.notices = tuple(p.notice for p in parsed if p.notice)
        for notice in self.notices:
            log.warning(notice)
        return self.notices

    def restore(self) -> None:
        """Every changed weight back to its original, bit for bit."""
        with torch.no_grad():
            for param, original in self._originals.values():
                param.copy_(original)
        self._originals.clear()
        self._active = ()
        self.notices = ()

    # -- reading and matching ----------------------------------------------------------------------------
    def _parse(self, use: LoraUse, stamp: tuple) -> _Parsed:
        if stamp in self._parsed:
            self._parsed.move_to_end(stamp)
            return self._parsed[stamp]
        filename = use.path.name
        try:
            layers, stray = parse_lora(read_lora_tensors(use.path), filename)
        except LoraFileError as exc:
            raise RequestError("prompt", str(exc)) from None
        if self._table is None:
            self._table = build_targets(self.unet, self.text_encoders)
        matched, missing = match_layers(layers, self._table)
        family = guess_family(layers)
        label = FAMILY_LABELS.get(self.family, self.family)
        if family is not None and family != self.family:
            raise RequestError("prompt", f"LoRA {filename} is for {FAMILY_LABELS[family]} models and "
                                         f"{self.model_name} is {label}; pick a LoRA made for {label}")
        if not matched:
            raise RequestError("prompt", f"LoRA {filename}: none of its {len(layers)} layers match a layer of "
                                         f"{self.model_name} (e.g. {layers[0].key!r}); it is not a LoRA for this "
                                         f"model ({label})")
        notice = ""
        if missing or stray:
            example = missing[0].key if missing else stray[0]
            notice = (f"LoRA {filename}: {len(missing) + len(stray)} of its {len(layers) + len(stray)} layers match "
                      f"nothing in {self.model_name} and were left out (e.g. {example!r})")
        parsed = _Parsed(matched, notice)
        self._parsed[stamp] = parsed
        while len(self._parsed) > KEEP_PARSED:
            self._parsed.popitem(last=False)
        return parsed

    # -- merging ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _merge(self, uses: list[LoraUse], parsed: list[_Parsed]) -> None:
        # Every change to one weight is summed first (in float32) and added once, so the result does not
        # depend on the order of the LoRAs and half-precision weights are rounded once.
        changes: dict[int, tuple[torch.Tensor, list[tuple[LoraLayer, float, str]]]] = {}
        for use, p in zip(uses, parsed, strict=True):
            for layer, target in p.matched:
                weight = use.te_weight if target.part == "te" else use.unet_weight
                if weight == 0:
                    continue
                param = target.module.weight
                changes.setdefault(id(param), (target.module, []))[1].append((layer, weight, use.path.name))
        for module, contributions in changes.values():
            weight_total, bias_total = None, None
            for layer, multiplier, filename in contributions:
                try:
                    delta, bias = layer_delta(layer, module.weight.shape)
                except LoraShapeError as exc:
                    raise RequestError("prompt", f"LoRA {filename} does not fit {self.model_name} ({exc}); it is "
                                                 f"probably for another model family") from None
                if delta is not None:  # a fresh tensor: scaled and summed in place (an SD 1.5 UNet's is GBs)
                    delta = delta.to(module.weight.device).mul_(multiplier)
                    weight_total = delta if weight_total is None else weight_total.add_(delta)
                if bias is not None:
                    if getattr(module, "bias", None) is None or bias.numel() != module.bias.numel():
                        raise RequestError("prompt", f"LoRA {filename}: {layer.key} changes a bias this model's "
                                                     "layer does not have")
                    bias = bias.to(module.bias.device).reshape(module.bias.shape) * multiplier
                    bias_total = bias if bias_total is None else bias_total + bias
            for param, total in ((module.weight, weight_total), (getattr(module, "bias", None), bias_total)):
                if total is not None:
                    self._add(param, total)

    def _add(self, param: torch.Tensor, delta: torch.Tensor) -> None:
        if id(param) not in self._originals:
            self._originals[id(param)] = (param, param.detach().to("cpu", copy=True))
        if param.dtype == torch.float32:
            param.add_(delta)  # the same sum as below, without a temporary
        else:
            param.copy_((param.float() + delta).to(param.dtype))
