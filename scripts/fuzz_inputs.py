"""Feed every target in tests/fuzz_targets.py a large budget of generated inputs; print the crashes.

    .venv/bin/python scripts/fuzz_inputs.py                   # >= 5,000 inputs over all targets, shared
                                                              # as in the suite (slow targets take fewer)
    .venv/bin/python scripts/fuzz_inputs.py --examples 2000   # per target
    .venv/bin/python scripts/fuzz_inputs.py --target settings --seed 3

One line per target, then ``crashes: N of M inputs`` and each distinct crash (target, exception
type, message, a shortened input). Exits 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from tests.fuzz_targets import SUITE_EXAMPLES, TARGETS, Crash, FuzzTarget, qt_app, run_one  # noqa: E402

DEFAULT_TOTAL = 5_000


def fuzz(target: FuzzTarget, examples: int, seed: int, root: Path) -> tuple[int, list[Crash]]:
    """Run ``target`` on up to ``examples`` inputs; the number fed and the crashes, without stopping at one."""
    crashes: list[Crash] = []
    fed = 0

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.inputs)
    def feed(value):
        nonlocal fed
        fed += 1
        crash = run_one(target, value, root)
        if crash is not None:
            crashes.append(crash)

    feed = hypothesis_seed(seed)(feed)
    feed()
    return fed, crashes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, help="inputs per target (default: 5,000 shared among targets)")
    parser.add_argument("--total", type=int, default=DEFAULT_TOTAL, help="inputs in all, without --examples")
    parser.add_argument("--target", default="", help="only targets whose name contains this")
    parser.add_argument("--seed", type=int, help="hypothesis seed, for a run that can be repeated")
    args = parser.parse_args(argv)
    chosen = [t for t in TARGETS if args.target.lower() in t.name.lower()]
    if not chosen:
        parser.error(f"no target matches {args.target!r}; targets: {', '.join(t.name for t in TARGETS)}")
    weights = {t.name: t.suite_examples or SUITE_EXAMPLES for t in chosen}
    budgets = {t.name: args.examples or math.ceil(args.total * weights[t.name] / sum(weights.values()))
               for t in chosen}
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed} (the same inputs again: --seed {seed})", flush=True)
    qt_app()
    total, crashes = 0, []
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        for target in chosen:
            start = time.perf_counter()
            fed, found = fuzz(target, budgets[target.name], seed, Path(tmp))
            total += fed
            crashes += found
            print(f"{target.name}: {fed} inputs, {len(found)} crashes, {time.perf_counter() - start:.1f} s",
                  flush=True)
    print(f"crashes: {len(crashes)} of {total} inputs")
    distinct: dict[tuple[str, str, str], list[Crash]] = {}
    for crash in crashes:
        distinct.setdefault(crash.kind, []).append(crash)
    for same in distinct.values():
        print(f"- ({len(same)}x) {same[0].describe()}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
