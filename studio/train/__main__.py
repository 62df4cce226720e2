"""Command line for training: ``python -m studio.train {base,sr,palette,classifier,judge} ...``.

Every run is resumable: start the same command again and it continues from
``<run>/checkpoint.pt`` (weights, EMA, optimiser and RNG state). To train on
your own pictures, build an npz with ``python -m studio.train.dataset folder``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .networks import DEFAULTS, network


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="npz from python -m studio.train.dataset")
    p.add_argument("--run", type=Path, required=True, help="folder for checkpoint.pt and log.jsonl")
    p.add_argument("--export", type=Path, default=None, help="safetensors file refreshed at every save")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=10**9, help="stop at this optimiser step")
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this many minutes (0: never)")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                   help="bfloat16 autocast (about 2x faster on CPUs with AVX-512 bf16)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m studio.train", description=__doc__)
    sub = p.add_subparsers(dest="kind", required=True)
    for kind in ("base", "sr"):
        s = sub.add_parser(kind, help=f"{kind} diffusion UNet")
        _common(s)
        defaults = DEFAULTS[kind]
        s.add_argument("--channels", type=int, default=defaults["channels"])
        s.add_argument("--mults", default=",".join(str(m) for m in defaults["mults"]))
        s.add_argument("--blocks", type=int, default=defaults["blocks"])
        s.add_argument("--ema-decay", type=float, default=0.999)
        s.add_argument("--cond-drop", type=float, default=0.1)
        s.add_argument("--init", type=Path, default=None,
                       help="start a new run from these weights (checkpoint.pt: its EMA; or .safetensors)")
        s.add_argument("--warmup", type=int, default=500,
                       help="optimiser steps of linear learning-rate warm-up (fewer when fine-tuning from --init)")
        s.add_argument("--lr-decay-minutes", type=float, default=0.0,
                       help="cosine-decay the learning rate to 10%% over this many minutes of training")
        if kind == "base":
            s.add_argument("--cross-attention", default=",".join(str(v) for v in defaults["cross_attention"]),
                           help="levels whose blocks attend to the prompt's tokens ('' for none)")
    s = sub.add_parser("palette", help="image-to-image UNet (Palette): colourisation and inpainting")
    _common(s)
    s.add_argument("--init", type=Path, default=None,
                   help="grow from these base weights (its network, a wider stem; e.g. the shipped base.safetensors)")
    s.add_argument("--ema-decay", type=float, default=0.999)
    s.add_argument("--cond-drop", type=float, default=0.1)
    s.add_argument("--lr-decay-minutes", type=float, default=0.0,
                   help="cosine-decay the learning rate to 10%% over this many minutes of training")
    s.add_argument("--inpaint-share", type=float, default=0.5, help="inpaintings; the rest are colourisations")
    s.add_argument("--warmup", type=int, default=200,
                   help="optimiser steps of linear learning-rate warm-up (short: all but the new inputs are trained)")
    for kind in ("classifier", "judge"):
        s = sub.add_parser(kind, help=f"{kind} over emoji categories")
        _common(s)
    a = p.parse_args(argv)
    if a.kind in ("base", "sr"):
        from .diffusion import DiffusionArgs, train

        cross = tuple(int(v) for v in a.cross_attention.split(",") if v) if a.kind == "base" else ()
        config = network(a.kind, a.channels, tuple(int(m) for m in a.mults.split(",")), a.blocks, cross)
        train(DiffusionArgs(
            kind=a.kind, data=a.data, run=a.run, export=a.export, config=config, batch=a.batch, lr=a.lr,
            ema_decay=a.ema_decay, cond_drop=a.cond_drop, steps=a.steps, minutes=a.minutes,
            save_every=a.save_every, seed=a.seed, device=a.device, bf16=a.bf16, threads=a.threads,
            init=a.init, lr_decay_minutes=a.lr_decay_minutes, warmup=a.warmup,
        ))
    elif a.kind == "palette":
        from .palette import PaletteArgs, palette_config, train_palette

        train_palette(PaletteArgs(
            kind="palette", data=a.data, run=a.run, export=a.export, config=palette_config(a.init), batch=a.batch,
            lr=a.lr, ema_decay=a.ema_decay, cond_drop=a.cond_drop, steps=a.steps, minutes=a.minutes,
            save_every=a.save_every, seed=a.seed, device=a.device, bf16=a.bf16, threads=a.threads, init=a.init,
            lr_decay_minutes=a.lr_decay_minutes, inpaint_share=a.inpaint_share, warmup=a.warmup,
        ))
    else:
        from .classifier import ClassifierArgs
        from .classifier import train as train_classifier

        train_classifier(ClassifierArgs(
            kind=a.kind, data=a.data, run=a.run, export=a.export, batch=a.batch, lr=a.lr, steps=a.steps,
            minutes=a.minutes, save_every=a.save_every, seed=a.seed, device=a.device, bf16=a.bf16,
            threads=a.threads,
        ))


if __name__ == "__main__":
    main()
