"""Timing the studio against a diffusers pipeline: shared by bench_sd.py and bench_controlnet.py."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def time_alternating(
    studio: Callable[[], None], diffusers: Callable[[], None], repeats: int, device: torch.device
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each side over ``repeats`` alternating runs, after one warm-up run of each
    (first-call allocations, lazy imports, a file's first load)."""
    wall: dict[str, list[float]] = {"studio": [], "diffusers": []}
    cpu: dict[str, list[float]] = {"studio": [], "diffusers": []}
    studio()
    diffusers()
    for _ in range(repeats):
        for name, fn in (("diffusers", diffusers), ("studio", studio)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t, c = time.perf_counter(), time.process_time()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return wall, cpu


def print_best_ratios(wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    """Each side's best and all its runs, and the best-of ratio studio / diffusers, for wall and CPU time."""
    for label, times in (("wall", wall), ("cpu", cpu)):
        best = {k: min(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{label:>4} {k:>9}: best {best[k]:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in v)})")
        print(f"{label:>4} ratio studio / diffusers: {best['studio'] / best['diffusers']:.3f}  (goal <= 1.02)")
