"""``python -m studio upscale``: make a finished image larger with Lanczos or an upscaler model file.

    python -m studio upscale photo.png --upscaler 4x-UltraSharp --scale 4 --out photo-4x.png
    python -m studio upscale photo.png --upscaler 4x-UltraSharp --server http://gpu-box:8188 --token T

The input's generation parameters are kept and A1111's ``postprocessing`` text is added.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .serve.remote_cli import add_server_flags


def add_upscale_parser(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("upscale", help="make an image larger (Lanczos or an upscaler model such as ESRGAN)",
                        description="Make an image larger. --upscaler is 'lanczos', the name of an upscaler file "
                                    "(A1111's models/ESRGAN, RealESRGAN, SwinIR, DAT, ... or ComfyUI's "
                                    "models/upscale_models, found from the usual install places, --upscaler-dir "
                                    "and DIFFUSION_STUDIO_SD_DIRS) or a path to a .pth / .safetensors file.")
    up.add_argument("image", type=Path, metavar="IN", help="the image to upscale")
    up.add_argument("--upscaler", default="lanczos", metavar="NAME_OR_PATH", help="default lanczos")
    up.add_argument("--scale", type=float, default=4.0, help="how many times larger (default 4)")
    up.add_argument("--tile", type=int, default=None, metavar="PX",
                    help="tile size in input pixels for model upscalers (default 256; 0: the whole image at once)")
    up.add_argument("--upscaler-dir", type=Path, action="append", default=[], metavar="DIR",
                    help="a folder of upscaler files (repeatable), searched before the usual places")
    up.add_argument("--device", default="auto", help="auto (default: CUDA, MPS, else CPU), cuda, cpu, ...")
    up.add_argument("--out", type=Path, default=None, help="default: IN's name with -NAME-SCALEx, as a PNG")
    up.add_argument("--quiet", action="store_true")
    add_server_flags(up)  # --server: the server's upscaler files, by name (python -m studio serve)


def run_upscale(args: argparse.Namespace) -> int:
    from .engine.models.sd.adapter_files import AdapterLibrary
    from .engine.upscalers import DEFAULT_TILE, is_lanczos, upscale_image, upscaler_label
    from .io.png import load_image, read_parameters, save_image
    from .io.postprocessing import POSTPROCESSING_KEY, upscale_text

    image = load_image(args.image)
    out = args.out or args.image.with_name(f"{args.image.stem}-{_slug(args.upscaler)}-{args.scale:g}x.png")
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"--out {out.name}: use a .png, .jpg or .webp file name")
    for folder in args.upscaler_dir:
        if not folder.is_dir():
            raise ValueError(f"--upscaler-dir {folder}: no such folder")
    try:
        parameters = read_parameters(args.image)
    except ValueError:
        parameters = None  # the pixels were readable; a damaged text chunk only loses the old parameters
    started = time.perf_counter()
    tile = DEFAULT_TILE if args.tile is None else args.tile

    def progress(done: int, total: int) -> None:
        if not args.quiet and total > 1:
            print(f"\rtile {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    if args.server:
        from .serve.remote_cli import upscale_on_server

        if args.upscaler_dir:
            raise ValueError("--upscaler-dir names folders on this computer; with --server the server uses the "
                             "upscalers in its own model folders: leave it out")
        result, label = upscale_on_server(args, image, tile, progress)
    else:
        library = AdapterLibrary(kind_folders={"upscaler": tuple(args.upscaler_dir)})
        result = upscale_image(image, args.scale, args.upscaler, library=library, tile=tile, device=args.device,
                               on_progress=progress)
        label = upscaler_label(args.upscaler, library)
    save_image(out, result, parameters, extra_text={POSTPROCESSING_KEY: upscale_text(label, args.scale)})
    how = "" if is_lanczos(args.upscaler) else f" with {label}"
    how += f" on {args.server}" if args.server else ""
    print(f"wrote {out} ({result.shape[1]}x{result.shape[0]}{how}, {time.perf_counter() - started:.2f} s)")
    return 0


def _slug(upscaler: str) -> str:
    name = Path(upscaler.strip()).stem or "upscaled"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]
