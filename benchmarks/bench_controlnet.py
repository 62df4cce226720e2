"""A ControlNet run through the studio vs diffusers' StableDiffusionControlNetPipeline on the same networks.

    python benchmarks/bench_controlnet.py [--steps 4] [--size 256] [--repeats 2] [--tiny] [--quick]

Builds an SD 1.5-sized model with random weights in memory (as bench_sd.py) and a
ControlNet from its UNet (diffusers' ControlNetModel.from_unet, ~360M parameters),
saved once as a single file in the original layout (control_model.*) that the studio
loads as a user's file; nothing is downloaded. Then times, alternately, the studio's
Runner with one unit (Euler, classifier-free guidance, a preview every step, the step
history, the final VAE decode) and diffusers' pipeline with EulerDiscreteScheduler over
the same steps, prompt, guidance, control image and size. Prints the best wall and CPU
time of each and their ratios (goal: <= 1.02), and the two runs' largest latent
difference. --tiny uses the test models; --quick is --tiny with 2 steps at 64 px, once.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from studio_vs_diffusers import print_best_ratios, time_alternating  # noqa: E402

from studio.engine.models.sd.detect import Detection  # noqa: E402
from studio.engine.models.sd.load import _tokenizers, assemble, require_sd_libraries  # noqa: E402
from studio.engine.models.sd.model import Networks  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs  # noqa: E402
from studio.engine.models.sd.testing_controlnet import build_random_controlnet, save_controlnet_single_file  # noqa: E402
from studio.engine.request import ControlUnit, GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.engine.schedules import sampling_sigmas  # noqa: E402

PROMPT, NEGATIVE = "a photograph of an astronaut riding a horse", "blurry, low quality"


def control_image(size: int) -> np.ndarray:
    """White strokes on black, as a scribble on the control layer."""
    image = np.zeros((size, size, 3), np.uint8)
    image[size // 4: size // 4 + 3, size // 8: -size // 8] = 255
    image[size // 4:, size // 2 - 1: size // 2 + 2] = 255
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cfg", type=float, default=7.5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny test networks (a smoke test of this script)")
    parser.add_argument("--quick", action="store_true", help="--tiny, 2 steps at 64 px, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.tiny, args.steps, args.size, args.repeats = True, 2, 64, 1
    require_sd_libraries()
    from diffusers import EulerDiscreteScheduler, StableDiffusionControlNetPipeline
    from PIL import Image

    device = torch.device(args.device)
    t0 = time.perf_counter()
    built = build_random("sd1", size="tiny" if args.tiny else "sd15")
    net = build_random_controlnet(built.unet, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizers = _tokenizers(save_configs(built, Path(tmp)), "sd1")
        path = save_controlnet_single_file(net, built.unet.config, Path(tmp) / "control_random_scribble.safetensors")
        nets = Networks(built.unet, built.vae, built.text_encoders, tokenizers)
        model = assemble("random SD 1.5", Detection("sd1", None), nets, built.scheduler_config, {}, device,
                         torch.float32)
        net.to(device)
        cn_params = sum(p.numel() for p in net.parameters()) / 1e6
        params = sum(p.numel() for p in built.unet.parameters()) / 1e6
        print(f"built a random SD 1.x model (UNet {params:.0f}M) and ControlNet ({cn_params:.0f}M) in "
              f"{time.perf_counter() - t0:.1f} s; {args.steps} Euler steps at {args.size}x{args.size}, CFG {args.cfg}, "
              f"{device}, threads {torch.get_num_threads()}")

        pipe = StableDiffusionControlNetPipeline(
            vae=built.vae, text_encoder=built.text_encoders[0], tokenizer=tokenizers[0], unet=built.unet,
            controlnet=net, scheduler=EulerDiscreteScheduler(**built.scheduler_config), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        hint = control_image(args.size)
        unit = ControlUnit(str(path), hint)
        request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, sampler="euler", steps=args.steps,
                                    cfg_scale=args.cfg, seed=1, width=args.size, height=args.size, controlnets=(unit,))
        runner = Runner(model)
        sigma0 = float(sampling_sigmas(model.schedule, args.steps, "leading", model.steps_offset)[0])
        side = args.size // 8
        noise = torch.randn((1, 4, side, side), generator=torch.Generator("cpu").manual_seed(request.seed))
        latents = (noise * sigma0 / (sigma0**2 + 1) ** 0.5).to(device)
        previews, outputs = [], {}

        def studio() -> None:
            previews.clear()
            outputs["studio"] = runner.run(request, on_step=lambda e: previews.append(e.preview)).latent
            assert len(previews) == args.steps

        def diffusers() -> None:
            # The latents are the studio's start noise; the image is decoded to pixels as the studio's is.
            with torch.no_grad():
                out = pipe(PROMPT, image=Image.fromarray(hint), negative_prompt=NEGATIVE,
                           num_inference_steps=args.steps, guidance_scale=args.cfg, height=args.size,
                           width=args.size, latents=latents, output_type="latent")
                pipe.vae.decode(out.images / pipe.vae.config.scaling_factor)
            outputs["diffusers"] = out.images[0].float().cpu().numpy()

        wall, cpu = time_alternating(studio, diffusers, args.repeats, device)
    diff = np.abs(outputs["studio"] - outputs["diffusers"]).max()
    print(f"final latents, studio vs diffusers: max abs difference {diff:.2e} "
          f"(of values up to {np.abs(outputs['diffusers']).max():.2f})")
    print_best_ratios(wall, cpu)


if __name__ == "__main__":
    main()
