"""Every benchmark's --quick mode runs to the end, so no benchmark can rot unnoticed.

Each runs in its own process, as a user starts it. They start together: most of
their time is Python importing torch, transformers or diffusers, which side by side
costs the suite the slowest one rather than the sum where there are cores for it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# What each script prints once it has measured something (a line its reader looks for).
EXPECTED = {
    "bench_canvas.py": ["show_frame  256px + paint", "whole 10-move stroke"],
    "bench_controlnet.py": ["wall ratio studio / diffusers", "max abs difference"],
    "bench_embedded.py": ["one 64x64 image, 2 steps"],
    "bench_flow.py": ["wall ratio studio / diffusers", "max abs latent difference", "load      split files"],
    "bench_lora.py": ["apply (read + parse + merge)", "per-step ratio with / without LoRA (cpu)"],
    "bench_offload.py": ["sequential  n/a (cpu)", "same pixels in every placement: True", "auto would choose"],
    "bench_prompt_box.py": ["(kept 20,000)", "per key at the cap", "plain box, paste 10,000"],
    "bench_runner_overhead.py": ["same pixels: True", "ratio: "],
    "bench_samplers.py": ["dpmpp_2m      5     5", "noise floor"],
    "bench_sd.py": ["wall ratio studio / diffusers", "cpu ratio studio / diffusers"],
    "bench_serve.py": ["per-step ratio remote / local", "throughput ratio 2 replicas / 1",
                       "CPU per step beside the run's own thread"],
    "bench_tiles.py": ["tiled img2img (tile 64 px)", "one tile's peak", "tiled VAE decode, ours"],
    "bench_ui_latency.py": ["startup to a shown window", "generated 1 x 5 steps", "show a scrubbed step"],
    "bench_upscale.py": ["tiled (48 px)", "peak ratio tiled / one tile"],
}
NEEDS = {"bench_sd.py": "diffusers", "bench_controlnet.py": "diffusers", "bench_lora.py": "diffusers",  # [sd] extra
         "bench_flow.py": "diffusers", "bench_offload.py": "diffusers", "bench_upscale.py": "spandrel",
         "bench_tiles.py": "diffusers"}
ON_SERVER = {"bench_serve.py"}  # run on the session's serve cluster (tests/serve_cluster.py), after the others
TIMEOUT_S = 300  # a shared 2-core machine under load; alone they take 2-10 s each


def test_every_benchmark_has_a_quick_check():
    # Benchmarks are the bench_*.py scripts; other modules there are what they share (studio_vs_diffusers.py).
    assert sorted(p.name for p in BENCHMARKS.glob("bench_*.py")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def started(request, tmp_path_factory):
    """Start the quick runs this session selected, all at once; end any still running at teardown."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if item.module.__name__ == __name__ and hasattr(item, "callspec")}
    logs = tmp_path_factory.mktemp("bench-quick")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    runs: dict[str, tuple[subprocess.Popen, Path]] = {}
    for name in sorted(selected):
        if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
            continue
        log = logs / f"{name}.log"
        with log.open("w") as out:  # a file, not a pipe: a chatty script cannot fill it and stall
            runs[name] = (subprocess.Popen([sys.executable, str(BENCHMARKS / name), "--quick"], cwd=ROOT, env=env,
                                           stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log)
    yield runs
    for proc, _ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - ON_SERVER))
def test_quick_mode_runs(name, started):
    if name not in started:
        pytest.skip(f"{name} needs {NEEDS[name]} (pip install -e '.[sd]')")
    proc, log = started[name]
    try:
        code = proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{name} --quick ran over {TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
    out = log.read_text()
    assert code == 0, f"{name} --quick exited with {code}:\n{out[-3000:]}"
    missing = [line for line in EXPECTED[name] if line not in out]
    assert not missing, f"{name} --quick did not print {missing}:\n{out[-3000:]}"


def test_bench_serve_quick_mode_runs_on_the_session_cluster(serve_url):
    """bench_serve.py --quick reuses the serve tests' cluster (--url) instead of starting one of its own."""
    from serve_cluster import TOKEN

    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_serve.py"), "--quick", "--url", serve_url,
                           "--token", TOKEN], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"bench_serve.py --quick exited with {proc.returncode}:\n{out[-3000:]}"
    missing = [line for line in EXPECTED["bench_serve.py"] if line not in out]
    assert not missing, f"bench_serve.py --quick did not print {missing}:\n{out[-3000:]}"
