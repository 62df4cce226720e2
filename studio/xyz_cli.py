"""``python -m studio xyz``: an X/Y/Z plot headless, written as one labelled grid PNG.

    python -m studio xyz --x "Steps: 10,20" --y "CFG scale: 1,3,5" --prompt "red heart" --out grid.png

Takes every ``generate`` flag for the settings the axes leave alone; ``--cells-dir`` also writes each
cell as its own PNG with its parameters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LETTERS = ("X", "Y", "Z")  # as studio.state.xyz_plot names them; not imported, so the CLI starts light


def add_xyz_parser(sub: argparse._SubParsersAction, generate: argparse.ArgumentParser) -> None:
    """Register ``xyz`` with the ``generate`` parser's flags (call after they are all added)."""
    xyz = sub.add_parser("xyz", parents=[generate], add_help=False,
                         help="an X/Y/Z plot: vary up to three settings, write a labelled grid",
                         description="Vary up to three settings and write a labelled grid PNG. An axis is "
                                     "'TYPE: VALUES' in AUTOMATIC1111's syntax, e.g. 'Steps: 10-30 (+10)', "
                                     "'CFG scale: 1-5 [3]', 'Sampler: Euler a, DPM++ 2M', 'Prompt S/R: cat, dog'.")
    for letter in LETTERS:
        xyz.add_argument(f"--{letter.lower()}", default=None, metavar="'TYPE: VALUES'", help=f"the {letter} axis")
    xyz.add_argument("--cells-dir", type=Path, default=None, help="also write each cell here as a PNG")
    xyz.set_defaults(out=Path("xyz_grid.png"))


def axis_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The (type, values) rows from --x/--y/--z; an axis left out is "Nothing"."""
    rows: list[tuple[str, str]] = []
    for letter in LETTERS:
        text = getattr(args, letter.lower())
        if text is None:
            rows.append(("", ""))
            continue
        type_name, colon, values = text.partition(":")
        if not colon:
            raise ValueError(f"--{letter.lower()} {text!r}: write the setting, a colon and the values, "
                             "e.g. 'Steps: 10,20'")
        rows.append((type_name.strip(), values.strip()))
    while rows and not rows[-1][0]:
        rows.pop()
    return rows


def cell_request(plot, base, cell):
    """The request of one cell: the axes' values on ``base``; a Size axis resizes the init image and mask."""
    from .state.job_builder import fit_image, fit_mask

    request = plot.cell_values(base, cell)
    only_masked = request.inpaint_area == "masked" and request.mask is not None  # the crop follows the size
    if request.init_image is not None and not only_masked:
        request = request.with_changes(
            init_image=fit_image(request.init_image, request.width, request.height),
            mask=fit_mask(request.mask, request.width, request.height) if request.mask is not None else None)
    return request


def cell_labels(plot, cell) -> str:
    return ", ".join(a.labels[i] for a, i in zip(plot.axes, cell.position, strict=True) if a is not None)


def write_grid(args: argparse.Namespace, plot, seed: int, images: list, texts: dict[int, str]) -> None:
    """The labelled grid PNG (a cell without an image stays blank) with the first finished cell's parameters."""
    from .io.plot_grid import compose_plot_grid
    from .io.png import save_image
    from .state.xyz_plot import grid_parameters

    grid = compose_plot_grid(images, plot.shape, plot.labels("X"), plot.labels("Y"), plot.labels("Z"))
    save_image(args.out, grid.image, grid_parameters(texts[min(texts)], plot))
    nx, ny, nz = plot.shape
    print(f"wrote {args.out} ({grid.image.shape[1]}x{grid.image.shape[0]}, {nx}x{ny}x{nz} cells, seed {seed})")


def run_xyz(args: argparse.Namespace) -> int:
    if args.batch_count != 1:
        raise ValueError("--batch-count is for generate: a plot sweeps seeds with a Seed axis, e.g. --y 'Seed: 1-4'")
    rows = axis_rows(args)
    if getattr(args, "server", None):  # the cells spread over the server's replicas
        from .serve.fanout_cli import run_xyz_on_server

        return run_xyz_on_server(args, rows)
    from .cli import _request_from_args, adapter_library, model_parts
    from .engine.models.registry import available_models, default_model_key, load_model, model_key
    from .engine.runner import Runner
    from .engine.samplers import SAMPLERS
    from .engine.schedules import SPACINGS
    from .io.parameters import format_parameters
    from .io.png import save_image
    from .state.xyz_axes import AxisChoices
    from .state.xyz_plot import build_plot

    key = model_key(args.model) if args.model else default_model_key()
    runner = Runner(load_model(key, device=args.device, **model_parts(args)), adapters=adapter_library(args, key))
    base = _request_from_args(args, runner.model).with_changes(model=key)
    choices = AxisChoices(tuple((s.name, s.label) for s in SAMPLERS.values()), tuple(SPACINGS),
                          tuple((e.key, e.label) for e in available_models()))
    plot = build_plot(rows, choices, base.prompt, base.negative_prompt, (base.width, base.height))
    if args.cells_dir is not None:
        args.cells_dir.mkdir(parents=True, exist_ok=True)
    images: list = [None] * plot.cell_count
    texts: dict[int, str] = {}
    for n, cell in enumerate(plot.cells()):
        request = cell_request(plot, base, cell)
        if request.model != key:  # a Model axis runs outermost, so each model loads once
            key = request.model
            runner = Runner(load_model(key, device=args.device), adapters=adapter_library(args, key))
        if not args.quiet:
            sys.stderr.write(f"cell {n + 1}/{plot.cell_count}: {cell_labels(plot, cell)}\n")
        result = runner.run(request)
        texts[cell.index] = format_parameters(request, runner.model.info.name, result.infotext)
        images[cell.index] = result.image
        if args.cells_dir is not None:
            save_image(args.cells_dir / f"cell-{cell.index:03d}.png", result.image, texts[cell.index])
    write_grid(args, plot, base.seed, images, texts)
    return 0
