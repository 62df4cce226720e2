"""What precision each part of a flow model was stored in and loaded as, for the model card.

"transformer: GGUF Q4_K -> bf16", "t5xxl: fp8 e4m3fn -> bf16": users pick quantised files to fit their card, so
the studio says what it read and what it computes in. Built from headers only (tensors.read_storage).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import prod
from pathlib import Path

import torch

from .tensors import read_storage

MINOR_SHARE = 0.05  # a second storage type holding more than this share of the weights is named too
DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
               torch.float8_e4m3fn: "fp8 e4m3fn", torch.float8_e5m2: "fp8 e5m2"}


@dataclass(frozen=True)
class PartPrecision:
    part: str  # "transformer", "clip_l", "clip_g", "t5xxl", "qwen3", "vae"
    file: str  # the file (or folder) it came from, by name
    stored: str  # "bf16", "fp8 e4m3fn", "GGUF Q4_K + Q6_K", ...
    loaded: str  # the dtype the network computes in: "bf16", "fp16", "fp32"

    def describe(self) -> str:
        precision = self.stored if self.stored == self.loaded else f"{self.stored} -> {self.loaded}"
        return f"{self.part}: {precision} ({self.file})"


@dataclass(frozen=True)
class LoadReport:
    """One line per part of a loaded model: where it came from and in which precision; then where its parts
    live in memory (offload.MemoryPlan.describe) when it has been placed."""

    parts: tuple[PartPrecision, ...] = ()
    placement: str = ""

    def lines(self) -> tuple[str, ...]:
        return tuple(p.describe() for p in self.parts) + ((self.placement,) if self.placement else ())


def dtype_name(dtype: torch.dtype) -> str:
    return DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def stored_precision(path: str | Path, prefix: str = "") -> str:
    """How the weights under ``prefix`` are stored, by share of numbers: "fp8 e4m3fn", "GGUF Q4_K + Q6_K".

    Matrices decide (norms and biases are kept in fp32 by every quantiser, and would only add noise); a
    second kind is named when it holds more than MINOR_SHARE of the numbers.
    """
    storage = {k: v for k, v in read_storage(path).items() if k.startswith(prefix)}
    matrices = {k: v for k, v in storage.items() if len(v[1]) >= 2} or storage
    counts: Counter[str] = Counter()
    for kind, shape in matrices.values():
        counts[kind] += prod(shape)
    total = sum(counts.values())
    if not total:
        return "empty"
    ranked = [kind for kind, n in counts.most_common() if n > MINOR_SHARE * total]
    main, rest = ranked[0], ranked[1:3]
    if main.startswith("GGUF ") and rest:
        return main + "".join(" + " + r.removeprefix("GGUF ") for r in rest)
    return " + ".join([main, *rest])


def part_precision(part: str, path: str | Path, dtype: torch.dtype, prefix: str = "") -> PartPrecision:
    path = Path(path)
    return PartPrecision(part, path.name, stored_precision(path, prefix), dtype_name(dtype))
