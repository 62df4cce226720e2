"""Time and peak memory of tiled img2img and tiled VAE decoding against one tile's run.

    python benchmarks/bench_tiles.py [--size 2048] [--tile 512] [--steps 2] [--cfg 5] [--device cpu|cuda] [--quick]

1. img2img through the Runner at ``--size`` px with ``tile_size=--tile`` (MultiDiffusion, and the VAE in tiles)
   against an untiled run at ``--tile`` px (one tile's run), with an SD 1.5-sized random UNet and text encoder
   and the tests' tiny VAE, so the UNet is what is measured.
2. VAE decoding with an SD 1.5-sized random VAE: ``--size`` px in tiles (the codec's tiled decode, and diffusers'
   tiled_decode on the same tiles) against an untiled decode at ``--tile`` px.

Peak memory: on CUDA, torch's peak allocated bytes above what was allocated before; on the CPU, the process's
peak resident memory above its resident memory before, sampled every 2 ms (the script re-runs itself with
glibc's mmap threshold fixed, so freed tensors go back to the system and one case does not hide in the next
one's baseline). The goal: each tiled run's peak within 1.5x of one tile's run.
--quick: tiny networks, 128 px in 64 px tiles, one step (a smoke test of this script).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # before anything allocates: see the docstring
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    os.execv(sys.executable, [sys.executable, *sys.argv])
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from studio.engine.models.sd.detect import Detection  # noqa: E402
from studio.engine.models.sd.load import _tokenizers, assemble  # noqa: E402
from studio.engine.models.sd.model import Networks  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs  # noqa: E402
from studio.engine.models.vae_tiles import tiled_decode  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(fn, device: torch.device) -> tuple[float, int]:
    """(seconds, peak bytes above the start) of ``fn()``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated() - base
    base, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    return seconds, max(peak[0], _rss()) - base


def _model(args, device: torch.device, tmp: str):
    built = build_random("sd1", size="tiny" if args.quick else "sd15", seed=0)
    built.vae = build_random("sd1", seed=1).vae  # the tiny VAE: the UNet is what part 1 measures
    nets = Networks(built.unet, built.vae, built.text_encoders, _tokenizers(save_configs(built, tmp), "sd1"))
    return assemble("random SD 1.5-sized UNet", Detection("sd1", None), nets, built.scheduler_config, {}, device,
                    torch.float16 if device.type == "cuda" else torch.float32)


def _image(side: int) -> np.ndarray:
    ramp = np.linspace(20, 230, side)
    return np.stack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)), np.full((side, side), 128.0)],
                    -1).astype(np.uint8)


def _report(label: str, side: int, seconds: float, peak: int, single: int | None) -> None:
    ratio = f"  {peak / single:5.2f}x one tile's peak" if single else ""
    print(f"{label:<42} {side:5d} px  {seconds / (side * side / 1e6):8.2f} s/MP  peak {peak / 2**20:9.1f} MiB{ratio}")


def img2img(args, device: torch.device) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = _model(args, device, tmp)
    runner = Runner(model)

    def run(side: int, tile: int) -> None:
        runner.run(GenerationRequest(prompt="a harbour at dawn", negative_prompt="blurry", sampler="euler",
                                     steps=args.steps, strength=1.0, cfg_scale=args.cfg, seed=1, width=side,
                                     height=side, init_image=_image(side), tile_size=tile))

    run(args.tile, 0)  # warm-up: first calls pay for allocation and kernel selection
    s1, p1 = measure(lambda: run(args.tile, 0), device)
    s2, p2 = measure(lambda: run(args.size, args.tile), device)
    print(f"img2img, {args.steps} step(s), CFG {args.cfg:g}, {device.type}:")
    _report("one tile's run (untiled)", args.tile, s1, p1, None)
    _report(f"tiled img2img (tile {args.tile} px)", args.size, s2, p2, p1)


def vae_decode(args, device: torch.device) -> None:
    if args.quick:
        vae = build_random("sd1", seed=1).vae
    else:
        from diffusers import AutoencoderKL

        torch.manual_seed(0)  # SD 1.5's VAE shape
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=512)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    vae = vae.to(device, dtype).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(0)

    def latent(side: int) -> torch.Tensor:
        return torch.randn(1, 4, side // 8, side // 8, generator=gen).to(device, dtype)

    def decode(z: torch.Tensor) -> torch.Tensor:
        return vae.decode(z, return_dict=False)[0]

    small, large = latent(args.tile), latent(args.size)
    with torch.no_grad():
        decode(small)  # warm-up
        s1, p1 = measure(lambda: decode(small), device)
        s2, p2 = measure(lambda: tiled_decode(decode, vae.decoder, large, args.tile // 8, 8), device)
        vae.enable_tiling()
        vae.tile_sample_min_size, vae.tile_latent_min_size = args.tile, args.tile // 8
        s3, p3 = measure(lambda: vae.tiled_decode(large, return_dict=False), device)
        vae.disable_tiling()
    print(f"VAE decode ({'tiny' if args.quick else 'SD 1.5-sized'} random VAE), {device.type}:")
    _report("one tile's decode (untiled)", args.tile, s1, p1, None)
    _report(f"tiled VAE decode, ours (tile {args.tile} px)", args.size, s2, p2, p1)
    _report(f"diffusers tiled_decode (tile {args.tile} px)", args.size, s3, p3, p1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip", choices=("img2img", "vae"), default=None, help="leave one part out")
    p.add_argument("--quick", action="store_true", help="tiny networks, 128 px in 64 px tiles, one step")
    args = p.parse_args()
    if args.quick:
        args.size, args.tile, args.steps = 128, 64, 1
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.skip != "img2img":
        img2img(args, device)
    if args.skip != "vae":
        vae_decode(args, device)


if __name__ == "__main__":
    main()
