"""The headless command line: ``python -m studio generate ...``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .xyz_cli import add_xyz_parser, run_xyz

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see DESIGN.md


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio", description="Diffusion Studio")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate an image headless")
    gen.add_argument("--prompt", default="")
    gen.add_argument("--negative", default="", help="negative prompt")
    gen.add_argument("--model", default=None, help="model key (default: the embedded model, else toy)")
    gen.add_argument("--sampler", default="dpmpp_2m")
    gen.add_argument("--spacing", default=None, help="leading, trailing, linspace or karras")
    gen.add_argument("--karras", action="store_true", help="shorthand for --spacing karras")
    gen.add_argument("--steps", type=int, default=20)
    gen.add_argument("--cfg", type=float, default=5.0, help="classifier-free guidance scale")
    gen.add_argument("--rescale", type=float, default=0.0, help="guidance rescale phi in [0, 1]")
    gen.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                     help="apply CFG only for sigma in (LO, HI]")
    gen.add_argument("--classifier-scale", type=float, default=0.0)
    gen.add_argument("--clip-skip", type=int, default=None,
                     help="CLIP layers to skip from the end, AUTOMATIC1111's 'Clip skip' (SD 1.x/2.x)")
    gen.add_argument("--threshold", type=float, default=None, help="dynamic thresholding percentile")
    gen.add_argument("--eta", type=float, default=0.0, help="DDIM eta")
    gen.add_argument("--seed", type=int, default=None, help="default: random")
    gen.add_argument("--width", type=int, default=None)
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument("--init", type=Path, default=None, help="init image for img2img / inpainting")
    gen.add_argument("--mask", type=Path, default=None, help="mask image: white = repaint")
    gen.add_argument("--strength", type=float, default=None, help="img2img strength (default 0.75 with --init)")
    gen.add_argument("--feather", type=float, default=0.0, help="mask feather in pixels")
    gen.add_argument("--resample", type=int, default=0, help="RePaint passes per step when inpainting")
    gen.add_argument("--params-from", type=Path, default=None, help="start from the parameters in this PNG")
    gen.add_argument("--device", default="cpu")
    gen.add_argument("--out", type=Path, default=Path("out.png"))
    gen.add_argument("--quiet", action="store_true")
    sub.add_parser("models", help="list the models this install can load")
    add_xyz_parser(sub, gen)  # last: it copies the generate flags
    return parser


def _mask_from_file(path: Path, width: int, height: int):
    import numpy as np

    from .io.png import load_image

    mask = load_image(path).astype(np.float32).mean(axis=2) / 255.0
    if mask.shape != (height, width):
        raise ValueError(f"mask {path.name} is {mask.shape[1]}x{mask.shape[0]}, the image is {width}x{height}")
    return mask


def _request_from_args(args, model):
    import random

    from .engine.request import GenerationRequest
    from .io.parameters import parse_parameters
    from .io.png import load_image, read_parameters

    base = GenerationRequest()
    if args.params_from is not None:
        text = read_parameters(args.params_from)
        if text is None:
            raise ValueError(f"{args.params_from.name} carries no generation parameters")
        base = parse_parameters(text).request
    init = load_image(args.init) if args.init is not None else None
    width = args.width or (init.shape[1] if init is not None else None) or model.info.default_size[0]
    height = args.height or (init.shape[0] if init is not None else None) or model.info.default_size[1]
    spacing = "karras" if args.karras else (args.spacing or base.spacing)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    strength = args.strength if args.strength is not None else (0.75 if init is not None and not args.mask else 1.0)
    return base.with_changes(
        prompt=args.prompt or base.prompt, negative_prompt=args.negative or base.negative_prompt,
        model=args.model or base.model, sampler=args.sampler, spacing=spacing, steps=args.steps,
        cfg_scale=args.cfg, guidance_rescale=args.rescale,
        guidance_interval=tuple(args.interval) if args.interval else None,
        classifier_scale=args.classifier_scale, dynamic_threshold=args.threshold, eta=args.eta, seed=seed,
        width=width, height=height, strength=strength, init_image=init,
        mask=_mask_from_file(args.mask, width, height) if args.mask is not None else None,
        mask_feather=args.feather, resample=args.resample,
        clip_skip=args.clip_skip if args.clip_skip is not None else base.clip_skip)


def _generate(args) -> int:
    from .engine.models.registry import default_model_key, load_model
    from .engine.runner import Runner
    from .io.parameters import format_parameters
    from .io.png import save_image

    key = args.model or default_model_key()
    model = load_model(key, device=args.device)
    request = _request_from_args(args, model).with_changes(model=key)
    runner = Runner(model)
    started = time.perf_counter()

    def progress(event) -> None:
        if args.quiet:
            return
        done = event.index + 1
        rate = done / max(event.elapsed, 1e-9)
        left = (event.total - done) / rate if rate else 0
        sys.stderr.write(f"\rstep {done}/{event.total}  {rate:.1f} it/s  {left:.1f} s left   ")
        sys.stderr.flush()

    result = runner.run(request, on_step=progress)
    save_image(args.out, result.image, format_parameters(request, model.info.name))
    if not args.quiet:
        sys.stderr.write("\n")
    print(f"wrote {args.out} ({result.image.shape[1]}x{result.image.shape[0]}, seed {request.seed}, "
          f"{time.perf_counter() - started:.2f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .engine.models.registry import ModelLoadError
    from .engine.runner import NonFiniteError

    try:
        if args.command == "models":
            from .engine.models.registry import scan_models

            entries, skipped = scan_models()
            for entry in entries:
                print(f"{entry.key:12s} {entry.family:10s} {entry.label}")
            for reason in skipped:
                print(f"skipped: {reason}", file=sys.stderr)
            return 0
        if args.command == "xyz":
            return run_xyz(args)
        return _generate(args)
    except (ValueError, ModelLoadError, NonFiniteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as exc:
        from .engine.devices import is_out_of_memory

        if not is_out_of_memory(exc):
            raise
        print(f"error: out of memory ({str(exc).splitlines()[0][:200] or type(exc).__name__}); try a smaller "
              "--width and --height or fewer --steps", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
