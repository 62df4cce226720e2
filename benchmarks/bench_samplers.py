"""Error against network evaluations for every sampler, on a Gaussian mixture with an exact denoiser.

    python benchmarks/bench_samplers.py [--samples 20000] [--quick]

Prints, per sampler and step count: evaluations of the denoiser, the error of the
sample mean, the largest error in the covariance, and the largest error in the
mixture weights (each sample assigned to its most likely component). --quick: 500
samples at 5 steps, a smoke test of the script.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from studio.engine.gaussian_mixture import sampler_error  # noqa: E402
from studio.engine.samplers import SAMPLERS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--quick", action="store_true", help="500 samples, 5 steps: a smoke test of this script")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.steps = 500, [5]
    print(f"{'sampler':9s} {'steps':>5s} {'NFE':>5s} {'mean err':>9s} {'cov err':>9s} {'weight err':>10s}")
    for name in SAMPLERS:
        for steps in args.steps:
            e = sampler_error(name, steps, n=args.samples, seed=0)
            print(f"{name:9s} {steps:5d} {e.evaluations:5d} {e.mean_error:9.4f} {e.cov_error:9.4f} "
                  f"{e.weight_error:10.4f}")
    print(f"(sampling noise floor at n={args.samples}: mean ~{(3 / args.samples) ** 0.5:.3f})")


if __name__ == "__main__":
    main()
