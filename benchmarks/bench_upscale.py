"""What a tiled upscale costs: seconds per output megapixel and peak memory, tiled and untiled.

    python benchmarks/bench_upscale.py [--size 512] [--tile 256] [--blocks 23] [--filters 64] [--device cpu] [--quick]

A 4x ESRGAN-sized random network (RRDBNet, 23 blocks of 64 filters, as RealESRGAN_x4plus) written to
a .safetensors file and loaded as a user's file is (spandrel), then three runs, each in a fresh process
so its peak is its own: the whole image untiled, the whole image in tiles, and one image the size of a
tile. Peak memory is the growth of the process's peak resident size over what it held before the run
(CPU), or torch's peak allocation (CUDA). Goal: the tiled run's peak within 1.5x of the single tile's,
whatever the image size. --quick: a 2-block, 16-filter network on a 48 px image with 32 px tiles, to
check in seconds that the script still runs (its figures mean little).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(model_path: str, size: int, tile: int, device: str) -> dict:
    """One run in this process: seconds and peak bytes above the state before it."""
    import numpy as np
    import torch

    from studio.engine.upscalers import upscale_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    upscale_image(image[:8, :8], 4, model_path, tile=0, device=device)  # load the file, warm the kernels
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resident_bytes()
    started = time.perf_counter()
    out = upscale_image(image, 4, model_path, tile=tile, device=device)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if cuda:
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"seconds": seconds, "peak": peak, "out_pixels": int(out.shape[0] * out.shape[1])}


def run_case(model_path: str, size: int, tile: int, device: str) -> dict:
    code = ("import json; from bench_upscale import measure; "
            f"print(json.dumps(measure({model_path!r}, {size}, {tile}, {device!r})))")
    root = Path(__file__).resolve().parents[1]
    paths = [str(root / "benchmarks"), str(root), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"a run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=23)
    parser.add_argument("--filters", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.size, args.tile, args.blocks, args.filters = 48, 32, 2, 16

    from studio.engine.upscalers.testing import save_rrdb

    with tempfile.TemporaryDirectory() as folder:
        path = save_rrdb(Path(folder) / "bench_x4.safetensors", blocks=args.blocks, filters=args.filters)
        print(f"RRDBNet {args.blocks} blocks x {args.filters} filters, 4x, {args.size} px -> {args.size * 4} px, "
              f"tiles of {args.tile} px, {args.device}", flush=True)
        print(f"{'run':24s} {'seconds':>8s} {'s / out MP':>11s} {'peak MiB':>9s}", flush=True)
        # One tile: an image exactly one tile large (untiled, padded the same way), the unit the others compare to.
        cases = [("one tile", args.tile, 0), ("tiled", args.size, args.tile), ("untiled", args.size, 0)]
        peaks = {}
        for name, size, tile in cases:
            got = run_case(str(path), size, tile, args.device)
            peaks[name] = got["peak"]
            per_mp = got["seconds"] / (got["out_pixels"] / 1e6)
            print(f"{name + f' ({size} px)':24s} {got['seconds']:8.2f} {per_mp:11.2f} {got['peak'] / 2**20:9.1f}",
                  flush=True)
    print(f"peak ratio tiled / one tile: {peaks['tiled'] / max(peaks['one tile'], 1):.2f} (goal <= 1.5); "
          f"untiled / one tile: {peaks['untiled'] / max(peaks['one tile'], 1):.2f}")


if __name__ == "__main__":
    main()
