"""A flow-model run through the studio vs the family's diffusers pipeline, and each file layout's load cost.

    python benchmarks/bench_flow.py [--family sd3|flux|zimage] [--steps 4] [--size 256] [--repeats 2] [--quick]

Builds a mid-size random transformer of the family in memory (for sd3: an 8-block, 512-wide MMDiT, with
tiny text encoders and VAE so the transformer's steps dominate; nothing is downloaded), then times,
alternately, the studio's Runner (Euler, classifier-free guidance, a preview every step, the step
history, the final VAE decode) and the diffusers pipeline (StableDiffusion3Pipeline) over the same flow
times, prompt, guidance and size; prints each side's best wall and CPU time and the ratios (goal <= 1.02).
Then saves the model in each layout the studio reads (diffusers folder, all-in-one file, split files) and
loads each in a fresh process: load time and peak memory (RSS high-water mark above the RSS before the
load; Linux). --quick: the tiny test model, 2 steps at 64 px, once, and only the split files' load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from studio_vs_diffusers import print_best_ratios, time_alternating  # noqa: E402

from studio.engine.flow import sigma_to_flow_t  # noqa: E402
from studio.engine.request import GenerationRequest  # noqa: E402
from studio.engine.runner import Runner  # noqa: E402
from studio.engine.schedules import sampling_sigmas, schedule_at_size  # noqa: E402

PROMPT, NEGATIVE = "a photograph of an astronaut riding a horse", "blurry, low quality"


@dataclass
class FamilyBench:
    """What the benchmark needs from a family: random weights, a pipeline on them, the layouts it saves."""

    build: Callable[[str], object]  # size "tiny" | "mid" -> the family's random model
    load: Callable[..., object]  # ModelFiles -> the studio's model (load_<family>)
    pipeline: Callable[[object], object]  # studio model -> diffusers pipeline on the same modules
    layouts: Callable[[object, Path], dict]  # random model, folder -> {layout name: ModelFiles}
    describe: Callable[[object], str]
    warm: Callable[[], None]  # import the classes and read the shipped files loading uses (not a layout's cost)
    # the studio's CFG scale -> the pipeline's guidance_scale (Z-Image's pipeline counts from 0: s - 1)
    guidance: Callable[[float], float] = lambda scale: scale
    # (pipeline, args, noise [1, C, h, w], output_type) -> its output; None: the SD3-style call below
    call: Callable[..., object] | None = None


def _sd3() -> FamilyBench:
    from studio.engine.models.flow.parts import ModelFiles
    from studio.engine.models.flow.sd3 import load_sd3
    from studio.engine.models.flow.testing_sd3 import build_random_sd3, save_all_in_one, save_diffusers, save_split

    def pipeline(model):
        from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

        p = model.prompts
        return StableDiffusion3Pipeline(
            transformer=model.transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
            vae=model.codec.vae, text_encoder=p.clips[0], tokenizer=p.clip_tokenizers[0], text_encoder_2=p.clips[1],
            tokenizer_2=p.clip_tokenizers[1], text_encoder_3=p.t5, tokenizer_3=p.t5_tokenizer)

    def layouts(built, root: Path) -> dict:
        split = save_split(built, root / "models")
        return {"diffusers folder": ModelFiles("sd3", save_diffusers(built, root / "folder")),
                "all-in-one file": ModelFiles("sd3", save_all_in_one(built, root / "sd3_all_in_one.safetensors")),
                "split files": ModelFiles("sd3", split["transformer"],
                                          {r: split[r] for r in ("clip_l", "clip_g", "t5xxl")}, split["vae"])}

    def describe(built) -> str:
        params = sum(p.numel() for p in built.transformer.parameters()) / 1e6
        cfg = built.transformer.config
        return f"random SD3 MMDiT: {cfg.num_layers} blocks, width {cfg.caption_projection_dim}, {params:.0f}M params"

    def warm() -> None:
        from diffusers import AutoencoderKL, SD3Transformer2DModel  # noqa: F401
        from transformers import CLIPTextModelWithProjection, T5EncoderModel  # noqa: F401

        from studio.engine.models.flow.sd3 import shipped_tokenizers

        shipped_tokenizers()

    return FamilyBench(lambda size: build_random_sd3("sd3", size=size), load_sd3, pipeline, layouts, describe,
                       warm)


def _zimage() -> FamilyBench:
    from studio.engine.models.flow.parts import ModelFiles
    from studio.engine.models.flow.testing_zimage import (
        build_random_zimage,
        save_all_in_one,
        save_comfy_split,
        save_diffusers,
        zimage_pipeline,
    )
    from studio.engine.models.flow.zimage import load_zimage

    def pipeline(model):
        return zimage_pipeline(model.transformer, model.prompts.encoder, model.codec.vae)

    def layouts(built, root: Path) -> dict:
        transformer, encoder, vae = save_comfy_split(built, root / "ComfyUI")
        return {"diffusers folder": ModelFiles("zimage", save_diffusers(built, root / "Z-Image-Turbo")),
                "all-in-one file": ModelFiles("zimage", save_all_in_one(built, root / "zimage_aio.safetensors")),
                "split files": ModelFiles("zimage", transformer, {"qwen3": encoder}, vae)}

    def describe(built) -> str:
        params = sum(p.numel() for p in built.transformer.parameters()) / 1e6
        cfg = built.transformer.config
        return f"random Z-Image transformer: {cfg.n_layers} layers, width {cfg.dim}, {params:.0f}M params"

    def warm() -> None:
        from diffusers import AutoencoderKL, ZImageTransformer2DModel  # noqa: F401
        from transformers import Qwen3Model  # noqa: F401

        from studio.engine.models.flow.zimage_prompts import load_qwen_tokenizer

        load_qwen_tokenizer()

    return FamilyBench(lambda size: build_random_zimage(size), load_zimage, pipeline, layouts, describe, warm,
                       guidance=lambda scale: scale - 1)


def _flux() -> FamilyBench:
    import numpy as np

    from studio.engine.models.flow.flux import load_flux, pack, unpack
    from studio.engine.models.flow.parts import ModelFiles
    from studio.engine.models.flow.testing_flux import (
        build_random_flux,
        save_all_in_one,
        save_diffusers,
        save_split,
        scheduler_config,
    )

    def build(size: str):
        if size == "tiny":
            return build_random_flux("dev")
        return build_random_flux("dev", width=512, layers=(4, 8), head_dim=64)  # 71M params, 8 heads of 64

    def pipeline(model):
        from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

        p = model.prompts
        return FluxPipeline(transformer=model.transformer, vae=model.codec.vae, text_encoder=p.clip,
                            tokenizer=p.clip_tokenizer, text_encoder_2=p.t5, tokenizer_2=p.t5_tokenizer,
                            scheduler=FlowMatchEulerDiscreteScheduler.from_config(scheduler_config("dev")))

    def call(pipe, args, noise, output_type):
        # FluxPipeline shifts the sigmas it is given by mu (from the size), as the studio's schedule does; true
        # CFG runs the negative prompt as a second pass, as the studio's CFG > 1 does (batched)
        h, w = noise.shape[-2:]
        out = pipe(PROMPT, negative_prompt=NEGATIVE, true_cfg_scale=args.cfg, guidance_scale=3.5,
                   num_inference_steps=args.steps, height=args.size, width=args.size,
                   sigmas=np.linspace(1.0, 1 / args.steps, args.steps), latents=pack(noise),
                   output_type=output_type).images
        return unpack(out, h, w)[0] if output_type == "latent" else out

    def layouts(built, root: Path) -> dict:
        return {"diffusers folder": ModelFiles("flux", save_diffusers(built, root / "folder")),
                "all-in-one file": ModelFiles("flux", save_all_in_one(built, root / "flux_all_in_one.safetensors")),
                "split files": save_split(built, root / "comfy")}

    def describe(built) -> str:
        params = sum(p.numel() for p in built.transformer.parameters()) / 1e6
        cfg = built.transformer.config
        return (f"random Flux.1 dev transformer: {cfg.num_layers} double + {cfg.num_single_layers} single blocks, "
                f"width {cfg.num_attention_heads * cfg.attention_head_dim}, {params:.0f}M params")

    def warm() -> None:
        from diffusers import AutoencoderKL, FluxTransformer2DModel  # noqa: F401
        from transformers import CLIPTextModel, T5EncoderModel  # noqa: F401

        from studio.engine.models.flow.flux_prompts import load_clip_tokenizer
        from studio.engine.models.flow.t5_tokenizer import load_t5_tokenizer

        load_clip_tokenizer(), load_t5_tokenizer()

    return FamilyBench(build, load_flux, pipeline, layouts, describe, warm, call=call)


FAMILIES: dict[str, Callable[[], FamilyBench]] = {"sd3": _sd3, "flux": _flux, "zimage": _zimage}


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _files_to_json(files) -> str:
    return json.dumps({"family": files.family, "transformer": str(files.transformer), "vae": str(files.vae or ""),
                       "text_encoders": {k: str(v) for k, v in files.text_encoders.items()}})


def load_once(spec: str) -> None:
    """In a fresh process: import what loading needs, then load one layout; print seconds and peak RSS above
    the RSS before the load (the high-water mark reset first; Linux)."""
    from studio.engine.models.flow.parts import ModelFiles

    d = json.loads(spec)
    files = ModelFiles(d["family"], Path(d["transformer"]), {k: Path(v) for k, v in d["text_encoders"].items()},
                       Path(d["vae"]) if d["vae"] else None)
    bench = FAMILIES[d["family"]]()
    bench.warm()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        exact = True
    except OSError:
        exact = False
    before = _rss_mb("VmRSS")
    t = time.perf_counter()
    bench.load(files, "cpu", torch.float32)
    seconds = time.perf_counter() - t
    peak = _rss_mb("VmHWM") - before if exact else float("nan")
    print(json.dumps({"seconds": seconds, "peak_mb": peak}))


def measure_layouts(bench: FamilyBench, built, names: list[str] | None = None) -> None:
    """Each layout (or those ``names``) saved, then loaded in a fresh process, so no load inherits another's
    memory or caches."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in bench.layouts(built, Path(tmp)).items():
            if names and name not in names:
                continue
            size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file() and _belongs(p, files))
            out = subprocess.run([sys.executable, __file__, "--load-once", _files_to_json(files)], env=env,
                                 capture_output=True, text=True, check=False)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if out.returncode or not lines:
                raise RuntimeError(f"loading the {name} failed:\n{out.stderr[-2000:]}")
            got = json.loads(lines[-1])
            print(f"load {name:>16}: {got['seconds']:.2f} s, peak RSS +{got['peak_mb']:.0f} MB "
                  f"(files {size / 2**20:.0f} MB)")


def _belongs(path: Path, files) -> bool:
    roots = [Path(files.transformer), *map(Path, files.text_encoders.values())]
    if files.vae:
        roots.append(Path(files.vae))
    return any(path == r or r in path.parents for r in roots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="sd3")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cfg", type=float, default=4.5)
    parser.add_argument("--quick", action="store_true", help="the tiny test model, 2 steps at 64 px, 1 repeat")
    parser.add_argument("--no-load", action="store_true", help="skip the layouts' load times")
    parser.add_argument("--load-once", help=argparse.SUPPRESS)  # the child process of measure_layouts
    args = parser.parse_args()
    if args.load_once:
        load_once(args.load_once)
        return
    if args.quick:
        args.steps, args.size, args.repeats = 2, 64, 1
    from studio.engine.models.sd.load import require_sd_libraries

    require_sd_libraries()
    bench = FAMILIES[args.family]()
    t0 = time.perf_counter()
    built = bench.build("tiny" if args.quick else "mid")
    with tempfile.TemporaryDirectory() as tmp:
        files = bench.layouts(built, Path(tmp))["all-in-one file"]
        model = bench.load(files, "cpu", torch.float32)
    print(f"{bench.describe(built)}; built and loaded in {time.perf_counter() - t0:.1f} s; {args.steps} Euler steps "
          f"at {args.size}x{args.size}, CFG {args.cfg}, threads {torch.get_num_threads()}")

    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, sampler="euler", steps=args.steps,
                                cfg_scale=args.cfg, seed=1, width=args.size, height=args.size, spacing="trailing")
    schedule = schedule_at_size(model.schedule, args.size, args.size)
    ts = [float(t) for t in sigma_to_flow_t(sampling_sigmas(schedule, args.steps, "trailing")[:-1].double())]
    pipe = bench.pipeline(model)
    guidance = bench.guidance(args.cfg)
    pipe.set_progress_bar_config(disable=True)
    runner = Runner(model)
    previews = []
    latents = {}

    def studio() -> None:
        previews.clear()
        latents["studio"] = runner.run(request, on_step=lambda e: previews.append(e.preview)).latent
        if len(previews) != args.steps:
            raise RuntimeError(f"expected a preview per step, got {len(previews)}")

    def diffusers() -> None:
        noise = torch.randn((1, model.info.latent_channels, args.size // 8, args.size // 8),
                            generator=torch.Generator("cpu").manual_seed(1))
        with torch.no_grad():
            if bench.call is not None:
                bench.call(pipe, args, noise, "np")
                return
            pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=args.steps, guidance_scale=guidance,
                 height=args.size, width=args.size, sigmas=ts, latents=noise, output_type="np")

    wall, cpu = time_alternating(studio, diffusers, args.repeats, torch.device("cpu"))
    print_best_ratios(wall, cpu)
    noise = torch.randn((1, model.info.latent_channels, args.size // 8, args.size // 8),
                        generator=torch.Generator("cpu").manual_seed(1))
    with torch.no_grad():
        if bench.call is not None:
            ref = bench.call(pipe, args, noise, "latent")
        else:
            ref = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=args.steps, guidance_scale=guidance,
                       height=args.size, width=args.size, sigmas=ts, latents=noise, output_type="latent").images[0]
    print(f"max abs latent difference studio vs diffusers: {abs(latents['studio'] - ref.numpy()).max():.2e}")
    if not args.no_load:  # --quick: one layout, to check the measuring works
        measure_layouts(bench, built, ["split files"] if args.quick else None)


if __name__ == "__main__":
    main()
