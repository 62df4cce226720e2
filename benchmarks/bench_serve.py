"""The studio as a server: what a remote run costs over a local one, and what a second replica buys.

    python benchmarks/bench_serve.py [--url URL --token T] [--model embedded] [--steps 20] [--repeats 5]
                                     [--grid 16] [--quick]

(a) Per-step time of a run streamed from the server over loopback / the same run in this process (goal <= 1.05).
    Both sides run the same request on one torch thread (a replica's); a step's time is the interval between two
    step events as their reader gets them, so the remote side includes the preview's PNG, JSON and HTTP. The
    whole run's wall time (post to result, load excluded on both sides) is printed beside it.
(b) A grid of 16 images (16 seeds) fanned out over the server's 2 replicas / the same grid one run at a time,
    which keeps only one replica working (goal >= 1.7x throughput).

Without --url it starts a local Ray cluster with the app (2 CPU replicas, one torch thread each) and stops it at
the end. --url reuses a running server (the tests' cluster); its replicas must serve --model. --quick: the toy
model, 3 steps, 2 repeats, a 4-image grid: a check that the script runs (its ratios mean little on the toy model,
whose step takes a millisecond).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from studio.engine.models.registry import load_model  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.serve.client import StudioServer, run_payload  # noqa: E402
from studio.serve.fanout import FanOut  # noqa: E402
from studio.serve.ray_tuning import server_env  # noqa: E402

REPLICA_THREADS = 1  # what each replica runs on; the local side matches it


def step_intervals(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


class Timings:
    """Step intervals, whole-run times and the last image of one side's runs."""

    def __init__(self):
        self.intervals: list[float] = []
        self.walls: list[float] = []
        self.image: np.ndarray | None = None

    def add(self, started: float, step_times: list[float], image: np.ndarray) -> None:
        self.walls.append(time.perf_counter() - started)
        self.intervals += step_intervals(step_times)
        self.image = image


def local_run(runner: Runner, request: GenerationRequest, into: Timings) -> None:
    times: list[float] = []
    started = time.perf_counter()
    with torch.inference_mode():
        result = runner.run(request, on_step=lambda _event: times.append(time.perf_counter()))
    into.add(started, times, result.image)


async def remote_run(server: StudioServer, payload: dict, into: Timings) -> None:
    """The run on the server, its step events timed as they arrive here."""
    times: list[float] = []
    image = None
    started = time.perf_counter()
    async for event in server.run(payload):
        if event["type"] == "step":
            times.append(time.perf_counter())
        elif event["type"] == "result":
            image = event["image"]
    into.add(started, times, image)


async def grid(server: StudioServer, request: GenerationRequest, count: int,
               max_in_flight: int | None) -> tuple[float, FanOut]:
    """Seconds to run ``count`` seeds of the request through fan-out."""
    payloads = [run_payload(request.with_changes(seed=request.seed + i)) for i in range(count)]
    fan = FanOut(server, max_in_flight=max_in_flight)
    started = time.perf_counter()
    outcomes = await fan.run(payloads)
    seconds = time.perf_counter() - started
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} of the grid's runs failed: {failed[0]}")
    return seconds, fan


class LocalCluster:
    """Ray on this machine with the studio's app on CPU replicas of one torch thread, as tests/serve_cluster.py
    starts it; redeployed with another replica count in place."""

    TOKEN = "bench"

    def __init__(self, model: str):
        self.model, self.port, self.url = model, 0, ""

    def start(self, replicas: int) -> str:
        import logging
        import socket

        import ray
        from ray import serve

        root = str(Path(__file__).resolve().parents[1])
        env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
               "OMP_WAIT_POLICY": "PASSIVE", "DIFFUSION_STUDIO_TEST_MODELS": "1"} | server_env()
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": env}, log_to_driver=False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        self.deploy(replicas)
        return self.url

    def deploy(self, replicas: int) -> None:
        from ray import serve

        from studio.serve.app import build_app
        from studio.serve.options import ServerOptions

        options = ServerOptions(port=self.port, token=self.TOKEN, replicas=replicas, default_model=self.model,
                                threads=REPLICA_THREADS)
        serve.run(build_app(options), name=options.app_name, route_prefix="/")
        asyncio.run(self._wait(replicas))

    async def _wait(self, replicas: int) -> None:
        async with StudioServer(self.url, self.TOKEN) as server:
            for _ in range(600):
                if (await server.health()).get("replicas") == replicas:
                    return
                await asyncio.sleep(0.2)
        raise SystemExit(f"the app did not reach {replicas} replicas in 2 minutes")

    def stop(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


async def step_overhead(args, request: GenerationRequest) -> None:
    """(a): local and remote runs taken in turns, so a change in the machine's load hits both sides."""
    runner = Runner(load_model(request.model))
    payload = run_payload(request)
    local, remote = Timings(), Timings()
    async with StudioServer(args.url, args.token) as server:
        health = await server.health()
        print(f"server {args.url}: {health.get('replicas')} replica(s) on {health.get('device')}, "
              f"studio {health.get('version')}")
        local_run(runner, request, Timings())  # warm up both
        await remote_run(server, payload, Timings())
        for _ in range(args.repeats):
            local_run(runner, request, local)
            await remote_run(server, payload, remote)
    lp, rp = statistics.median(local.intervals), statistics.median(remote.intervals)
    lw, rw = statistics.median(local.walls), statistics.median(remote.walls)
    print(f"(a) {request.model}, {request.width}x{request.height}, {request.steps} steps, "
          f"{args.repeats} runs each, one torch thread, same pixels: {np.array_equal(local.image, remote.image)}")
    print(f"    per step   local {lp * 1000:8.2f} ms   remote {rp * 1000:8.2f} ms")
    print(f"    whole run  local {lw * 1000:8.1f} ms   remote {rw * 1000:8.1f} ms")
    print(f"    per-step ratio remote / local: {rp / lp:.3f}  (goal <= 1.05); whole-run ratio {rw / lw:.3f}")


async def grid_seconds(args, request: GenerationRequest, max_in_flight: int | None) -> tuple[float, int, int]:
    """(seconds for the grid, replicas, runs in flight) after a warm-up run on every replica."""
    grid_request = request.with_changes(seed=request.seed + 1000)
    async with StudioServer(args.url, args.token) as server:
        replicas = int((await server.health()).get("replicas", 1))
        await grid(server, grid_request, 2 * replicas, None)  # every replica warm
        seconds, fan = await grid(server, grid_request, args.grid, max_in_flight)
    return seconds, replicas, fan.in_flight_limit


def report_grid(args, request: GenerationRequest, one: tuple, spread: tuple, how_one: str) -> None:
    print(f"(b) a grid of {args.grid} images ({request.model}, {request.steps} steps each)")
    print(f"    {how_one:38s} {one[0]:7.2f} s  {args.grid / one[0]:6.2f} images/s")
    print(f"    {f'{spread[1]} replicas, {spread[2]} in flight':38s} {spread[0]:7.2f} s  "
          f"{args.grid / spread[0]:6.2f} images/s")
    print(f"    throughput ratio 2 replicas / 1: {one[0] / spread[0]:.2f}x  (goal >= 1.7x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a running server with 2 replicas (default: start a local "
                                                    "cluster)")
    parser.add_argument("--token", default=None)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="toy model, 3 steps, 2 repeats, a 4-image grid")
    args = parser.parse_args()
    if args.quick:
        args.model, args.steps, args.repeats, args.grid = "toy", 3, 2, 4
    torch.set_num_threads(REPLICA_THREADS)
    size = load_model(args.model).info.default_size
    request = GenerationRequest(prompt="red heart", model=args.model, steps=args.steps, cfg_scale=3.0, seed=1,
                                width=size[0], height=size[1])
    if args.url is not None:  # a running server: "one replica" is one run at a time, the other replica idle
        asyncio.run(step_overhead(args, request))
        one = asyncio.run(grid_seconds(args, request, max_in_flight=1))
        spread = asyncio.run(grid_seconds(args, request, max_in_flight=None))
        report_grid(args, request, one, spread, "one run at a time (1 replica busy)")
        return
    cluster = LocalCluster(args.model)
    try:
        args.url, args.token = cluster.start(replicas=1), cluster.TOKEN
        one = asyncio.run(grid_seconds(args, request, max_in_flight=None))
        cluster.deploy(replicas=2)
        asyncio.run(step_overhead(args, request))
        spread = asyncio.run(grid_seconds(args, request, max_in_flight=None))
        report_grid(args, request, one, spread, f"1 replica, {one[2]} in flight")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
