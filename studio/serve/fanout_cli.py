"""The command line's many-run commands on a server: ``xyz --server`` and ``generate --server --batch-count N``.

Their runs are built as the local commands build them (studio/xyz_cli.py, remote_cli.server_request), then spread
over the server's replicas (fanout.py). Each finished run is written as it would be locally; a run that fails is
named on stderr and the others are kept (a blank cell in the grid), and the exit status is then 1. Ctrl+C cancels
every run on the server.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

SOME_FAILED = 1  # the exit status when some runs failed and what finished was written


def _reporter(labels: Sequence[str], quiet: bool, started: float):
    """An on_event handler printing a line per finished run: ``3/8 done (seed 7) 4.1 s``."""
    done = [0]

    def on_event(index: int, event: dict[str, Any]) -> None:
        if event.get("type") == "result" and not quiet:
            done[0] += 1
            sys.stderr.write(f"{done[0]}/{len(labels)} done ({labels[index]}) {time.perf_counter() - started:.1f} s\n")

    return on_event


async def _fan_out(args: argparse.Namespace, server, requests: list, labels: list[str]):
    from .client import run_payload
    from .fanout import FanOut

    fan = FanOut(server)
    outcomes = await fan.run([run_payload(r) for r in requests], _reporter(labels, args.quiet, time.perf_counter()))
    if not args.quiet:
        replicas = {o.replica for o in outcomes if o.replica}
        sys.stderr.write(f"{sum(o.ok for o in outcomes)} of {len(outcomes)} runs done on {len(replicas)} "
                         f"replica(s), at most {fan.in_flight_limit} at once\n")
    return outcomes


def _report_failures(outcomes, labels: Sequence[str], what: str) -> int:
    """Each failed run on stderr; the exit status. ValueError when not one run finished."""
    failed = [o for o in outcomes if not o.ok]
    if failed and len(failed) == len(outcomes):
        raise ValueError(f"every {what} failed: {failed[0].error or 'cancelled'}")
    for outcome in failed:
        reason = "cancelled" if outcome.cancelled else outcome.error
        print(f"error: {what} {outcome.index + 1} ({labels[outcome.index]}): {reason}", file=sys.stderr)
    return SOME_FAILED if failed else 0


async def write_batch(args: argparse.Namespace, server, request, seeds: Sequence[int]) -> int:
    """``generate --server --batch-count N``: the seeds on the server's replicas, written as a local batch."""
    from ..batch_cli import batch_outputs
    from ..io.png import save_image

    labels = [f"seed {seed}" for seed in seeds]
    outcomes = await _fan_out(args, server, [request.with_changes(seed=s) for s in seeds], labels)
    status = _report_failures(outcomes, labels, "image")
    for outcome, path in zip(outcomes, batch_outputs(args.out, seeds), strict=True):
        if outcome.ok:
            save_image(path, outcome.image, outcome.result["parameters"])
            print(f"wrote {path} ({outcome.image.shape[1]}x{outcome.image.shape[0]}, seed {seeds[outcome.index]}, "
                  f"on {outcome.replica or server.url})")
    return status


def run_xyz_on_server(args: argparse.Namespace, rows: list[tuple[str, str]]) -> int:
    """``python -m studio xyz --server URL ...``: the plot's cells spread over the server's replicas."""
    from .remote_cli import _run, refuse_local_files

    refuse_local_files(args)
    return _run(_xyz(args, rows))


async def _xyz(args: argparse.Namespace, rows: list[tuple[str, str]]) -> int:
    from ..io.png import save_image
    from ..state.xyz_axes import AxisChoices
    from ..state.xyz_plot import build_plot
    from ..xyz_cli import cell_labels, cell_request, write_grid
    from .client import StudioServer
    from .remote_cli import server_request, server_token

    async with StudioServer(args.server, server_token(args)) as server:
        base, catalog = await server_request(server, args)
        choices = AxisChoices(tuple((name, label) for name, label in catalog.get("samplers", [])),
                              tuple(catalog.get("spacings", [])),
                              tuple((m["key"], m.get("label", m["key"])) for m in catalog.get("models", [])))
        plot = build_plot(rows, choices, base.prompt, base.negative_prompt, (base.width, base.height))
        cells = sorted(plot.cells(), key=lambda c: c.index)  # a server loads models per replica: no model order
        labels = [cell_labels(plot, cell) or f"cell {cell.index + 1}" for cell in cells]
        outcomes = await _fan_out(args, server, [cell_request(plot, base, cell) for cell in cells], labels)
    status = _report_failures(outcomes, labels, "cell")
    images: list = [None] * plot.cell_count
    texts: dict[int, str] = {}
    if args.cells_dir is not None:
        args.cells_dir.mkdir(parents=True, exist_ok=True)
    for cell, outcome in zip(cells, outcomes, strict=True):
        if outcome.ok:
            images[cell.index], texts[cell.index] = outcome.image, outcome.result["parameters"]
            if args.cells_dir is not None:
                save_image(args.cells_dir / f"cell-{cell.index:03d}.png", outcome.image, texts[cell.index])
    write_grid(args, plot, base.seed, images, texts)
    return status
