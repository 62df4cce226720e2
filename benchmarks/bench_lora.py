"""What a LoRA costs: per-step time with a merged LoRA ÷ without, and the time to apply and remove it.

    python benchmarks/bench_lora.py [--size 256] [--steps 4] [--repeats 3] [--rank 32] [--device cpu] [--quick]

An SD 1.5-sized random model (UNet, VAE, CLIP ViT-L) and a rank-32 kohya LoRA on every
linear layer of its UNet and text encoder (attention, feed-forward, projections), written to a
temporary .safetensors file and named in the prompt as a user would. Runs with and without the
tag alternate; a step's time is read from the runner's step events, so the merge before the first
step is not counted in it. Merged weights run the networks unchanged: the ratio should be ~1.00
(goal <= 1.02). Apply is the first merge (file read and parsed, deltas added), re-apply the same
file from the parse cache; remove restores every original weight. --quick: tiny networks, 64 px,
3 steps, 2 repeats, to check in seconds that the script still runs (its figures mean little).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from studio.engine.models.sd.adapter_files import AdapterLibrary  # noqa: E402
from studio.engine.models.sd.detect import Detection  # noqa: E402
from studio.engine.models.sd.load import _tokenizers, assemble, require_sd_libraries  # noqa: E402
from studio.engine.models.sd.lora import LoraUse  # noqa: E402
from studio.engine.models.sd.model import Networks  # noqa: E402
from studio.engine.models.sd.testing import build_random, save_configs  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def write_lora(model, path: Path, rank: int) -> int:
    """A kohya-layout LoRA on every nn.Linear of the UNet and the text encoder; returns the layer count."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    tensors = {}
    nets = [("lora_unet_", model.unet, ""), ("lora_te_", model.prompts.encoders[0], "text_model.")]
    for prefix, net, lead in nets:
        for name, module in net.named_modules():
            if isinstance(module, torch.nn.Linear):
                full = name if name.startswith(lead) else lead + name
                key = prefix + full.replace(".", "_")
                out_f, in_f = module.weight.shape
                tensors[f"{key}.lora_down.weight"] = torch.randn(rank, in_f, generator=gen) * 0.01
                tensors[f"{key}.lora_up.weight"] = torch.randn(out_f, rank, generator=gen) * 0.01
                tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path))
    return len(tensors) // 3


def step_seconds(runner: Runner, request: GenerationRequest) -> tuple[float, float]:
    """Median (wall, CPU) seconds between step events: network time only, not what came before the first step."""
    stamps: list[tuple[float, float]] = []
    runner.run(request, on_step=lambda e: stamps.append((time.perf_counter(), time.process_time())))
    gaps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:], strict=False)]
    return statistics.median(g[0] for g in gaps), statistics.median(g[1] for g in gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny networks, 64 px, 3 steps, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.size, args.steps, args.repeats = 64, 3, 2
    require_sd_libraries()
    t0 = time.perf_counter()
    built = build_random("sd1", size="tiny" if args.quick else "sd15")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tokenizers = _tokenizers(save_configs(built, folder / "cfg"), "sd1")
        nets = Networks(built.unet, built.vae, built.text_encoders, tokenizers)
        model = assemble("random SD 1.5", Detection("sd1", None), nets, built.scheduler_config, {},
                         torch.device(args.device), torch.float32 if args.device == "cpu" else torch.float16)
        lora_dir = folder / "Lora"
        lora_dir.mkdir()
        path = lora_dir / "bench.safetensors"
        layers = write_lora(model, path, args.rank)
        unet_m = sum(p.numel() for p in model.unet.parameters()) / 1e6
        print(f"built a random SD 1.x model (UNet {unet_m:.0f}M parameters) and a rank-{args.rank} LoRA on "
              f"{layers} linear layers ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s; "
              f"{args.steps} Euler steps at {args.size}x{args.size}, device {args.device}, "
              f"threads {torch.get_num_threads()}")

        # Apply and remove, timed on their own.
        use = [LoraUse(path, "bench", 1.0, 1.0)]
        t = time.perf_counter()
        model.loras.activate(use)
        first = time.perf_counter() - t
        t = time.perf_counter()
        model.loras.activate([])
        remove = time.perf_counter() - t
        t = time.perf_counter()
        model.loras.activate(use)
        again = time.perf_counter() - t
        model.loras.activate([])
        print(f"apply (read + parse + merge): {first:.3f} s   re-apply (parsed): {again:.3f} s   "
              f"remove (restore): {remove:.3f} s")

        runner = Runner(model, adapters=AdapterLibrary((lora_dir,), include_defaults=False))
        plain = GenerationRequest(prompt=PROMPT, negative_prompt="blurry", sampler="euler", steps=args.steps,
                                  cfg_scale=7.0, seed=1, width=args.size, height=args.size)
        tagged = plain.with_changes(prompt=PROMPT + " <lora:bench:0.8>")
        step_seconds(runner, plain)  # warm up: first-call allocations
        times: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
        for i in range(args.repeats):
            # Alternating which goes first cancels a machine that slows down or speeds up during the run.
            order = [("without", plain), ("with", tagged)][:: 1 if i % 2 == 0 else -1]
            for name, request in order:
                times[name].append(step_seconds(runner, request))  # "with" merges before its first step
        for name, values in times.items():
            print(f"per step {name:>7} LoRA: median wall {statistics.median(v[0] for v in values):.4f} s, "
                  f"cpu {statistics.median(v[1] for v in values):.4f} s  "
                  f"(wall runs: {', '.join(f'{v[0]:.4f}' for v in values)})")
        for k, label in ((0, "wall"), (1, "cpu")):
            ratio = statistics.median(v[k] for v in times["with"]) / statistics.median(v[k] for v in times["without"])
            # The best of each side as well: on a shared CPU a slow run says more about the machine than
            # the weights (timeit reports the minimum for the same reason).
            best = min(v[k] for v in times["with"]) / min(v[k] for v in times["without"])
            print(f"per-step ratio with / without LoRA ({label}): median {ratio:.4f}, best {best:.4f}  "
                  "(goal <= 1.02)")

if __name__ == "__main__":
    main()
