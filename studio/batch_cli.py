"""``generate --batch-count N``: N images, the seed and the next N - 1 seeds, one file each.

As the window's batch with a fixed seed and AUTOMATIC1111's "Batch count" count them. Locally the runs follow one
another on one model; with ``--server`` they are spread over the server's replicas (studio/serve/fanout_cli.py).
A seed sweep over chosen seeds is an X/Y/Z plot's ``Seed`` axis (``python -m studio xyz --x "Seed: 1,5,9"``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

MAX_BATCH_COUNT = 64  # as the window's Batch box (state/panel_limits.py)


def add_batch_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-count", type=int, default=1, metavar="N",
                        help=f"N images (1-{MAX_BATCH_COUNT}) with the seed and the next N-1 seeds, written as "
                             "OUT-SEED.png; with --server they run side by side on its replicas")


def check_batch_count(count: int) -> None:
    if not 1 <= count <= MAX_BATCH_COUNT:
        raise ValueError(f"--batch-count {count}: give 1 to {MAX_BATCH_COUNT}")


def batch_seeds(first: int, count: int) -> list[int]:
    from .engine.request import MAX_SEED

    return [(first + i) % (MAX_SEED + 1) for i in range(count)]


def batch_outputs(out: Path, seeds: Sequence[int]) -> list[Path]:
    """Where a batch's images go: ``out`` itself for one, ``<stem>-<seed><suffix>`` beside it for more."""
    if len(seeds) == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{seed}{out.suffix or '.png'}") for seed in seeds]
