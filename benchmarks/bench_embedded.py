"""How long the embedded model takes for one image on this machine, through the runner.

    python benchmarks/bench_embedded.py [--steps 20] [--repeats 5] [--threads 2] [--quick]

Times a full request (prompt encoding, ``steps`` guided base-model steps at 32 px,
previews and history, then the super-resolution decode when shipped) and the
parts separately. Prints medians in seconds; the goal is one image in about a second.
--quick: 2 steps, 1 repeat (a smoke test; most of its time is loading the text encoder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from studio.engine.models.embedded import load_embedded_model  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cfg", type=float, default=3.0)
    p.add_argument("--classifier-scale", type=float, default=0.0, help="classifier guidance (adds a gradient per step)")
    p.add_argument("--quick", action="store_true", help="2 steps, 1 repeat: a smoke test of this script")
    a = p.parse_args()
    if a.quick:
        a.steps, a.repeats = 2, 1
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    model = load_embedded_model("cpu")
    load_s = time.perf_counter() - t0
    model.encode_prompt("warm up", "", 32, 32)
    w, h = model.info.default_size
    runner = Runner(model)
    req = GenerationRequest(prompt="red heart", steps=a.steps, cfg_scale=a.cfg, classifier_scale=a.classifier_scale,
                            width=w, height=h,
                            sampler="dpmpp_2m", spacing="karras", seed=0)
    runner.run(req)  # warm-up: first calls pay for allocation and kernel selection
    full = _median(lambda: runner.run(req.with_changes(seed=req.seed + 1)), a.repeats)
    prompt = _median(lambda: model.encode_prompt(f"new prompt {time.perf_counter()}", "", w, h), a.repeats)
    s = model.info.latent_scale
    lat = torch.zeros(1, 3, h // s, w // s)
    decode = _median(lambda: model.decode(lat, torch.Generator().manual_seed(0)), a.repeats)
    print(f"model load            {load_s:6.3f} s")
    print(f"prompt encode (new)   {prompt:6.3f} s")
    print(f"decode (SR={'yes' if model.sr is not None else 'no '})       {decode:6.3f} s")
    print(f"one {w}x{h} image, {a.steps} steps, cfg {a.cfg:g}, classifier {a.classifier_scale:g}: {full:6.3f} s "
          f"(median of {a.repeats}, {a.threads} threads)")


if __name__ == "__main__":
    main()
