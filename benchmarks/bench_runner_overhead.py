"""What the runner costs over a bare sampler loop: previews, history, events, checks.

    python benchmarks/bench_runner_overhead.py [--steps 20] [--repeats 7] [--quick]

Both sides drive the same denoiser (a random-weight conv net about the cost of the
embedded model's UNet at 32 px, with classifier-free guidance) over the same
sigmas; the runner also makes a preview and keeps the step history every step.
Prints the median wall time of each and their ratio (goal: <= 1.02), and the ratio of
this process's CPU times, which other programs on a shared machine disturb far less. --quick runs 3 steps
twice, to check in a second that the script still runs (its ratio means little).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from studio.engine.denoisers import DiscreteTimeDenoiser  # noqa: E402
from studio.engine.guidance import classifier_free_guidance  # noqa: E402
from studio.engine.models.base import ModelInfo, image_to_unit, unit_to_image  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.engine.samplers import get_sampler, randn_like  # noqa: E402
from studio.engine.schedules import make_schedule, sampling_sigmas  # noqa: E402


class ConvNet(nn.Module):
    def __init__(self, width: int = 96, depth: int = 6):
        super().__init__()
        layers = [nn.Conv2d(3, width, 3, padding=1)]
        for _ in range(depth - 2):
            layers += [nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x, t, cond):
        return self.body(x + cond["bias"].view(-1, 1, 1, 1)) * 0.1


class BenchModel:
    def __init__(self):
        torch.manual_seed(0)
        self.info = ModelInfo("bench conv net", "bench", 3, 1, (32, 32))
        self.schedule = make_schedule("cosine")
        self.device, self.dtype = torch.device("cpu"), torch.float32
        self.net = ConvNet().eval()
        self._denoiser = DiscreteTimeDenoiser(self.net, self.schedule)

    def encode_prompt(self, prompt, negative, width, height, clip_skip=1):
        return {"bias": torch.tensor([0.1])}, {"bias": torch.tensor([0.0])}

    def denoiser(self):
        return self._denoiser

    def encode_image(self, image):
        return image_to_unit(image)

    def decode(self, latent, generator=None):
        return unit_to_image(latent)

    def preview(self, x0):
        return unit_to_image(x0)

    def classifier_grad(self):
        return None


def bare_loop(model: BenchModel, request: GenerationRequest) -> np.ndarray:
    """The least a caller could do: noise, one sampler call, decode."""
    sigmas = sampling_sigmas(model.schedule, request.steps, request.spacing)
    g = torch.Generator().manual_seed(request.seed)
    cond, uncond = model.encode_prompt(request.prompt, "", request.width, request.height)
    denoise = classifier_free_guidance(model.denoiser(), uncond, request.cfg_scale)
    x = randn_like(torch.empty(1, 3, request.height, request.width), g) * sigmas[0]
    x = get_sampler(request.sampler).fn(denoise, x, sigmas, cond=cond, generator=g)
    return model.decode(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sampler", default="dpmpp_2m")
    parser.add_argument("--quick", action="store_true", help="3 steps, 2 repeats: a smoke test of this script")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 3, 2
    model = BenchModel()
    runner = Runner(model)
    request = GenerationRequest(prompt="x", sampler=args.sampler, steps=args.steps, cfg_scale=5.0, seed=1)
    events = []
    with torch.inference_mode():
        bare_loop(model, request), runner.run(request)  # warm up
        bare, full, bare_cpu, full_cpu = [], [], [], []
        for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both sides
            t0, c0 = time.perf_counter(), time.process_time()
            reference = bare_loop(model, request)
            bare.append(time.perf_counter() - t0)
            bare_cpu.append(time.process_time() - c0)
            events.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            result = runner.run(request, on_step=events.append)
            full.append(time.perf_counter() - t0)
            full_cpu.append(time.process_time() - c0)
    same = np.array_equal(reference, result.image)
    b, f = statistics.median(bare), statistics.median(full)
    cpu_ratio = statistics.median(full_cpu) / statistics.median(bare_cpu)
    print(f"sampler {args.sampler}, {args.steps} steps, {len(events)} previews, history of "
          f"{len(runner.history(result.run_id).states)} steps, same pixels: {same}")
    print(f"bare sampler loop: {b * 1000:8.1f} ms (median of {args.repeats})")
    print(f"runner, previews + history: {f * 1000:8.1f} ms")
    print(f"ratio: {f / b:.4f}  (goal <= 1.02); CPU time ratio: {cpu_ratio:.4f}")


if __name__ == "__main__":
    main()
