"""A Stable Diffusion run through the studio vs diffusers' own pipeline on the same networks.

    python benchmarks/bench_sd.py [--steps 4] [--size 256] [--repeats 2] [--tiny] [--quick]

Builds an SD 1.5-sized model with random weights in memory (UNet 860M, VAE,
CLIP ViT-L text encoder; nothing is downloaded), then times, alternately, the
studio's Runner (Euler, classifier-free guidance, a preview every step, the
step history, the final VAE decode) and diffusers' StableDiffusionPipeline with
EulerDiscreteScheduler over the same steps, prompt, guidance and size. Prints
the best wall time and the best CPU time (this process's, which other programs
on a shared machine disturb far less) of each, and their ratios (goal: <= 1.02).
--tiny uses the test models instead; --quick is --tiny with 2 steps at 64 px, once,
to check the script in seconds (most of them importing diffusers).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from studio_vs_diffusers import print_best_ratios, time_alternating  # noqa: E402

from studio.engine.models.sd.detect import Detection  # noqa: E402
from studio.engine.models.sd.load import _tokenizers, assemble, require_sd_libraries  # noqa: E402
from studio.engine.models.sd.model import Networks  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

PROMPT, NEGATIVE = "a photograph of an astronaut riding a horse", "blurry, low quality"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cfg", type=float, default=7.5)
    parser.add_argument("--tiny", action="store_true", help="tiny test networks (a smoke test of this script)")
    parser.add_argument("--quick", action="store_true", help="--tiny, 2 steps at 64 px, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.tiny, args.steps, args.size, args.repeats = True, 2, 64, 1
    require_sd_libraries()
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    t0 = time.perf_counter()
    built = build_random("sd1", size="tiny" if args.tiny else "sd15")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        tokenizers = _tokenizers(save_configs(built, Path(tmp)), "sd1")
    nets = Networks(built.unet, built.vae, built.text_encoders, tokenizers)
    model = assemble("random SD 1.5", Detection("sd1", None), nets, built.scheduler_config, {},
                     torch.device("cpu"), torch.float32)
    params = sum(p.numel() for p in built.unet.parameters()) / 1e6
    print(f"built a random SD 1.x model (UNet {params:.0f}M parameters) in {time.perf_counter() - t0:.1f} s; "
          f"{args.steps} Euler steps at {args.size}x{args.size}, CFG {args.cfg}, threads {torch.get_num_threads()}")

    pipe = StableDiffusionPipeline(vae=built.vae, text_encoder=built.text_encoders[0], tokenizer=tokenizers[0],
                                   unet=built.unet, scheduler=EulerDiscreteScheduler(**built.scheduler_config),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, sampler="euler", steps=args.steps,
                                cfg_scale=args.cfg, seed=1, width=args.size, height=args.size)
    runner = Runner(model)
    previews = []

    def studio() -> None:
        previews.clear()
        runner.run(request, on_step=lambda e: previews.append(e.preview))
        assert len(previews) == args.steps

    def diffusers() -> None:
        with torch.no_grad():
            pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=args.steps, guidance_scale=args.cfg,
                 height=args.size, width=args.size, generator=torch.Generator("cpu").manual_seed(1),
                 output_type="np")

    wall, cpu = time_alternating(studio, diffusers, args.repeats, torch.device("cpu"))
    print_best_ratios(wall, cpu)


if __name__ == "__main__":
    main()
