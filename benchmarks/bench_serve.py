"""The studio as a server: what a remote run costs over a local one, and what a second replica buys.

    python benchmarks/bench_serve.py [--url URL --token T [--device cuda]] [--model embedded] [--steps 20]
                                     [--repeats 9] [--grid 16] [--quick]

(a) Per-step time of a run streamed from the server over loopback / the same run in this process (goal <= 1.05).
    Both sides run the same request on one torch thread (a replica's), as the studio's engine runs it; a step's
    time is the interval between two step events as their reader gets them, so the remote side includes the
    preview's PNG, JSON and HTTP. Each repeat is a remote run between two local ones, and its ratio is the remote
    run's median step over theirs: this machine's speed drifts by 20% within a minute (a 2-vCPU VM), which
    taking turns cancels. The median of the repeats' ratios is the figure, with its quartiles; the step as the
    replica timed it (its events' elapsed) tells the wire's share from the replica's own. The whole run's wall
    time (post to result, load excluded on both sides) is printed beside it, and, for a server on this machine,
    the CPU each of its processes spends per step beyond idling (serve_cpu.py).
(b) A grid of 16 images (16 seeds) fanned out over 2 replicas / the same grid on 1 replica (goal >= 1.7x
    throughput), in rounds of 4 images that take turns between the two, as (a) does.

Without --url it starts a local Ray cluster with the app twice, on 1 and on 2 CPU replicas of one torch thread
(``/one``, ``/two``; (a) runs on the lone replica), and stops it at the end. --url reuses a running server with
2 replicas (the tests' cluster; its replicas must serve --model): there "1 replica" is one run at a time.
--device cuda runs the local side on the GPU, for a server at --url whose replicas run on one.
--quick: the toy model, 3 steps, 2 repeats, a 4-image grid: a check that the script runs (its ratios mean little
on the toy model, whose step takes a millisecond).
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
from serve_cpu import CpuAccount  # noqa: E402

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
    """Each run's median step, whole-run times and the last image of one side's runs (``replica``: the steps as
    the server's replica timed them)."""

    def __init__(self):
        self.steps: list[float] = []
        self.replica: list[float] = []
        self.walls: list[float] = []
        self.image: np.ndarray | None = None

    def add(self, started: float, step_times: list[float], image: np.ndarray) -> float:
        self.walls.append(time.perf_counter() - started)
        self.steps.append(statistics.median(step_intervals(step_times)))
        self.image = image
        return self.steps[-1]


def local_run(runner: Runner, request: GenerationRequest, into: Timings) -> float:
    """The run in this process, as the studio's engine thread runs it; its median step."""
    times: list[float] = []
    started = time.perf_counter()
    result = runner.run(request, on_step=lambda _event: times.append(time.perf_counter()))
    return into.add(started, times, result.image)


async def remote_run(server: StudioServer, payload: dict, into: Timings) -> float:
    """The run on the server, its step events timed as they arrive here; its median step."""
    times: list[float] = []
    elapsed: list[float] = []
    image = None
    started = time.perf_counter()
    async for event in server.run(payload):
        if event["type"] == "step":
            times.append(time.perf_counter())
            elapsed.append(float(event["elapsed"]))
        elif event["type"] == "result":
            image = event["image"]
    into.replica.append(statistics.median(step_intervals(elapsed)))
    return into.add(started, times, image)


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
    """Ray on this machine with the studio's app twice, as tests/serve_cluster.py starts it: ``/one`` on one CPU
    replica and ``/two`` on two, one torch thread each. Both stay up, so (b) can take turns between them; an
    idle replica costs about 1% of a core."""

    TOKEN = "bench"
    APPS = {"one": 1, "two": 2}

    def __init__(self, model: str):
        self.model, self.port, self.url = model, 0, ""

    def start(self) -> str:
        import logging
        import socket

        import ray
        from ray import serve

        root = str(Path(__file__).resolve().parents[1])
        env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
               "OMP_WAIT_POLICY": "PASSIVE", "DIFFUSION_STUDIO_TEST_MODELS": "1"} | server_env()
        # One CPU of Ray's bookkeeping per replica: the three replicas share this machine's cores as they take
        # turns, never more than two at work at once.
        ray.init(address="local", num_cpus=sum(self.APPS.values()), include_dashboard=False,
                 logging_level=logging.WARNING, runtime_env={"env_vars": env}, log_to_driver=False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        self.url = f"http://127.0.0.1:{self.port}"
        for name, replicas in self.APPS.items():
            self.deploy(name, replicas)
        return self.url

    def deploy(self, name: str, replicas: int) -> None:
        from ray import serve

        from studio.serve.app import build_app
        from studio.serve.options import ServerOptions

        options = ServerOptions(port=self.port, token=self.TOKEN, replicas=replicas, default_model=self.model,
                                threads=REPLICA_THREADS, app_name=name)
        serve.run(build_app(options), name=name, route_prefix=f"/{name}")
        asyncio.run(self._wait(f"{self.url}/{name}", replicas))

    async def _wait(self, url: str, replicas: int) -> None:
        async with StudioServer(url, self.TOKEN) as server:
            for _ in range(600):
                if (await server.health()).get("replicas") == replicas:
                    return
                await asyncio.sleep(0.2)
        raise SystemExit(f"{url} did not reach {replicas} replicas in 2 minutes")

    def stop(self) -> None:
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


async def step_overhead(args, request: GenerationRequest, runner: Runner) -> None:
    """(a): each repeat a remote run between two local ones, so the machine's drift hits both sides alike."""
    payload = run_payload(request)
    local, remote = Timings(), Timings()
    ratios: list[float] = []
    async with StudioServer(args.url, args.token) as server:
        health = await server.health()
        print(f"server {args.url}: {health.get('replicas')} replica(s) on {health.get('device')}, "
              f"studio {health.get('version')}")
        local_run(runner, request, Timings())  # warm up both
        for _ in range(max(1, int(health.get("replicas") or 1))):
            await remote_run(server, payload, Timings())
        cpu = CpuAccount()  # the server's processes on this machine, if it runs here
        with cpu.measure(busy=False):
            before = local_run(runner, request, local)
        for _ in range(args.repeats):
            with cpu.measure(busy=True):
                step = await remote_run(server, payload, remote)
            with cpu.measure(busy=False):
                after = local_run(runner, request, local)
            ratios.append(step / ((before + after) / 2))
            before = after
    lp, rp, rr = (statistics.median(t) for t in (local.steps, remote.steps, remote.replica))
    lw, rw = statistics.median(local.walls), statistics.median(remote.walls)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    print(f"(a) {request.model}, {request.width}x{request.height}, {request.steps} steps, "
          f"{args.repeats} remote runs between {args.repeats + 1} local ones, one torch thread, "
          f"same pixels: {np.array_equal(local.image, remote.image)}")
    print(f"    per step   local {lp * 1000:8.2f} ms   remote {rp * 1000:8.2f} ms   (on the replica "
          f"{rr * 1000:.2f} ms)")
    print(f"    whole run  local {lw * 1000:8.1f} ms   remote {rw * 1000:8.1f} ms")
    print(f"    per-step ratio remote / local: {statistics.median(ratios):.3f}  (goal <= 1.05; quartiles "
          f"{quartiles[0]:.3f} to {quartiles[2]:.3f}); whole-run ratio {rw / lw:.3f}")
    account = cpu.report(args.repeats * request.steps)
    if account is not None:
        print(f"    {account}")


async def grid_rounds(args, request: GenerationRequest, one: tuple[str, int | None],
                      spread: tuple[str, int | None]) -> tuple[list[float], list[float], list[int]]:
    """(b): the grid in rounds of 4 images, each round once on ``one`` and once on ``spread`` (url, most runs in
    flight), taking turns as (a) does; every replica warmed first. Seconds per round on each, and the runs in
    flight on each."""
    grid_request = request.with_changes(seed=request.seed + 1000)
    times: tuple[list[float], list[float]] = ([], [])
    flights = []
    for url, _ in (one, spread):
        async with StudioServer(url, args.token) as server:
            replicas = int((await server.health()).get("replicas", 1))
            await grid(server, grid_request, 2 * replicas, None)
    rounds = max(1, args.grid // 4)
    for index in range(rounds):
        for side, (url, limit) in enumerate((one, spread)):
            async with StudioServer(url, args.token) as server:
                seeds = grid_request.with_changes(seed=grid_request.seed + 4 * index)
                seconds, fan = await grid(server, seeds, 4, limit)
            times[side].append(seconds)
            if index == 0:
                flights.append(fan.in_flight_limit)
    return times[0], times[1], flights


def report_grid(args, request: GenerationRequest, one: list[float], spread: list[float], flights: list[int],
                how_one: str) -> None:
    images = 4 * len(one)
    ratios = [a / b for a, b in zip(one, spread, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    print(f"(b) a grid of {images} images ({request.model}, {request.steps} steps each) in rounds of 4, "
          "taking turns")
    print(f"    {how_one + f', {flights[0]} in flight':38s} {sum(one):7.2f} s  {images / sum(one):6.2f} images/s")
    print(f"    {f'2 replicas, {flights[1]} in flight':38s} {sum(spread):7.2f} s  {images / sum(spread):6.2f} images/s")
    print(f"    throughput ratio 2 replicas / 1: {sum(one) / sum(spread):.2f}x  (goal >= 1.7x; the rounds' median "
          f"{statistics.median(ratios):.2f}x, quartiles {quartiles[0]:.2f}x to {quartiles[2]:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="a running server with 2 replicas (default: start a local "
                                                    "cluster)")
    parser.add_argument("--token", default=None)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="toy model, 3 steps, 2 repeats, a 4-image grid")
    parser.add_argument("--device", default="cpu", help="where the local side runs: the device of --url's replicas "
                                                        "(cuda for a GPU server; default cpu)")
    args = parser.parse_args()
    if args.device != "cpu" and args.url is None:
        parser.error("--device is for a running server's device: give its --url too (the local cluster's replicas "
                     "run on the CPU)")
    if args.quick:
        args.model, args.steps, args.repeats, args.grid = "toy", 3, 2, 4
    torch.set_num_threads(REPLICA_THREADS)
    runner = Runner(load_model(args.model, args.device))  # the local side's, loaded once
    size = runner.model.info.default_size
    request = GenerationRequest(prompt="red heart", model=args.model, steps=args.steps, cfg_scale=3.0, seed=1,
                                width=size[0], height=size[1])
    if args.url is not None:  # a running server: "one replica" is one run at a time, the other replica idle
        asyncio.run(step_overhead(args, request, runner))
        report_grid(args, request, *asyncio.run(grid_rounds(args, request, (args.url, 1), (args.url, None))),
                    "one run at a time (1 replica busy)")
        return
    cluster = LocalCluster(args.model)
    try:
        base, args.token = cluster.start(), cluster.TOKEN
        args.url = f"{base}/one"
        asyncio.run(step_overhead(args, request, runner))
        report_grid(args, request, *asyncio.run(grid_rounds(args, request, (f"{base}/one", None),
                                                            (f"{base}/two", None))), "1 replica")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
