"""The headless command line: ``python -m studio generate ...``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .batch_cli import add_batch_flag, batch_outputs, batch_seeds, check_batch_count
from .cli_controlnet import add_controlnet_flags, control_units
from .engine.hires_settings import canonical_upscaler
from .engine.memory_modes import OFFLOAD_MODES
from .engine.sampler_names import sampler_list
from .serve.cli import add_serve_parser
from .serve.remote_cli import add_server_flags, run_remote_generate, run_remote_models
from .upscale_cli import add_upscale_parser, run_upscale
from .version_report import VersionAction
from .xyz_cli import add_xyz_parser, run_xyz

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see DESIGN.md


def _program_name() -> str:
    """How the user started the command line: the installed diffusion-studio-cli, or python -m studio."""
    started_as = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return started_as if started_as.startswith("diffusion-studio") else "python -m studio"


def build_parser() -> argparse.ArgumentParser:
    # Every generation flag defaults to None: with --params-from only the flags given override the file.
    parser = argparse.ArgumentParser(prog=_program_name(), description="Diffusion Studio")
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate an image headless")
    gen.add_argument("--prompt", default=None)
    gen.add_argument("--negative", default=None, help="negative prompt")
    gen.add_argument("--model", default=None,
                     help="model key, or a model file or folder (SD 1.x/2.x/XL, SD 3.x, Flux.1, Z-Image; "
                          "default: the embedded model, else toy)")
    gen.add_argument("--text-encoder", type=Path, action="append", default=[], metavar="PATH",
                     help="a text encoder file for a split SD 3.x / Flux.1 / Z-Image model (clip_l, clip_g, t5xxl, "
                          "qwen3; repeatable); by default they are found beside the model (models/text_encoders)")
    gen.add_argument("--vae", type=Path, default=None, metavar="PATH",
                     help="the VAE file for a split SD 3.x / Flux.1 / Z-Image model (default: found in models/vae)")
    gen.add_argument("--guidance", type=float, default=None, metavar="W",
                     help="Flux dev's distilled guidance, Forge's 'Distilled CFG Scale' (default: the model's, "
                          "3.5 for dev)")
    gen.add_argument("--sampler", default=None, help=f"one of {sampler_list()} (default dpmpp_2m)")
    gen.add_argument("--spacing", default=None, help="leading, trailing, linspace or karras (default: the model's "
                                                     "own, trailing for SD 3.x/Flux/Z-Image, else leading)")
    gen.add_argument("--karras", action="store_true", help="shorthand for --spacing karras")
    gen.add_argument("--steps", type=int, default=None, help="default: the model's recommended steps")
    gen.add_argument("--cfg", type=float, default=None,
                     help="classifier-free guidance scale (default: the model's recommended scale)")
    gen.add_argument("--rescale", type=float, default=None, help="guidance rescale phi in [0, 1]")
    gen.add_argument("--interval", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                     help="apply CFG only for sigma in (LO, HI]")
    gen.add_argument("--classifier-scale", type=float, default=None)
    gen.add_argument("--clip-skip", type=int, default=None,
                     help="CLIP layers to skip from the end, AUTOMATIC1111's 'Clip skip' (SD 1.x/2.x)")
    gen.add_argument("--threshold", type=float, default=None, help="dynamic thresholding percentile")
    gen.add_argument("--eta", type=float, default=None, help="DDIM eta")
    gen.add_argument("--seed", type=int, default=None, help="default: random")
    gen.add_argument("--variation-seed", type=int, default=None,
                     help="AUTOMATIC1111's 'Variation seed': a second seed whose noise the start moves toward")
    gen.add_argument("--variation-strength", type=float, default=None,
                     help="how far toward the variation seed's noise, 0 (off, the default) to 1")
    gen.add_argument("--width", type=int, default=None, help="default: the model's own size")
    gen.add_argument("--height", type=int, default=None)
    gen.add_argument("--init", type=Path, default=None, help="init image for img2img / inpainting")
    gen.add_argument("--mask", type=Path, default=None, help="mask image: white = repaint")
    gen.add_argument("--strength", type=float, default=None, help="img2img strength (default 0.75 with --init)")
    gen.add_argument("--feather", type=float, default=None, help="mask feather in pixels")
    gen.add_argument("--resample", type=int, default=None, help="RePaint passes per step when inpainting")
    gen.add_argument("--inpaint-area", choices=("whole", "masked"), default=None,
                     help="with --mask: inpaint the whole picture (default), or only a crop around the mask, run at "
                          "--width x --height (default: the model's size) and pasted back (AUTOMATIC1111's 'Only "
                          "masked'); the init image may then be larger")
    gen.add_argument("--inpaint-padding", type=int, default=None, metavar="PX",
                     help="with --inpaint-area masked: pixels of the picture kept around the mask (default 32)")
    gen.add_argument("--masked-content", choices=("original", "fill", "latent-noise", "latent-nothing"), default=None,
                     help="with --mask: what the masked area starts from (AUTOMATIC1111's 'Masked content'; "
                          "default original)")
    gen.add_argument("--refiner", default=None, metavar="NAME_OR_PATH",
                     help="an SDXL refiner (file stem in the checkpoint folders, path or sd: key) that takes "
                          "over the last steps, AUTOMATIC1111's 'Refiner'")
    gen.add_argument("--refiner-switch", type=float, default=None, metavar="F",
                     help="fraction of the run after which the refiner takes over (default 0.8), "
                          "AUTOMATIC1111's 'Refiner switch at'")
    gen.add_argument("--hires-scale", type=float, default=None, metavar="S",
                     help="hires fix: a second pass at S times the size (e.g. 2; 0 or 1 is off)")
    gen.add_argument("--hires-steps", type=int, default=None, metavar="N",
                     help="steps of the hires pass (default 0: as many as --steps)")
    gen.add_argument("--hires-upscaler", default=None, metavar="NAME",
                     help="latent (or another of AUTOMATIC1111's Latent modes, e.g. 'latent (nearest-exact)'), "
                          "lanczos, or an upscaler model's name (default latent)")
    gen.add_argument("--denoise", type=float, default=None, metavar="D",
                     help="the hires pass's denoising strength (default 0.7); img2img's is --strength")
    gen.add_argument("--tile", type=int, default=None, metavar="PX",
                     help="tiled diffusion: denoise (and encode and decode) in overlapping tiles of PX pixels, "
                          "so a large image needs a tile's memory (0: off)")
    gen.add_argument("--vae-tile", type=int, default=None, metavar="PX",
                     help="encode and decode in tiles of PX pixels (0: as --tile, else tiles above 1536x1536)")
    gen.add_argument("--params-from", type=Path, default=None,
                     help="take every setting from the parameters in this image (ours, AUTOMATIC1111's, "
                          "Forge's, ComfyUI's); flags given here override it")
    add_controlnet_flags(gen)
    gen.add_argument("--lora-dir", type=Path, action="append", default=[], metavar="DIR",
                     help="a folder of LoRA files for <lora:NAME:WEIGHT> in the prompt (repeatable); the folders "
                          "beside the model (models/Lora, models/loras) and the usual install places are searched too")
    gen.add_argument("--device", default="cpu")
    gen.add_argument("--offload", choices=OFFLOAD_MODES, default="auto",
                     help="GPU memory for SD 3.x / Flux.1 / Z-Image: auto (the fastest that fits, the default), none "
                          "(everything on the GPU), model (one part at a time), sequential (the transformer's "
                          "blocks streamed: the least memory, slowest)")
    gen.add_argument("--out", type=Path, default=Path("out.png"))
    add_batch_flag(gen)
    gen.add_argument("--quiet", action="store_true")
    add_server_flags(gen)
    add_server_flags(sub.add_parser("models", help="list the models this install (or a server) can load"))
    add_upscale_parser(sub)
    add_serve_parser(sub)
    add_xyz_parser(sub, gen)  # last: it copies the generate flags
    return parser


# Flags that set one request field each (argparse dest -> field).
FLAG_FIELDS = {
    "prompt": "prompt", "negative": "negative_prompt", "sampler": "sampler", "spacing": "spacing",
    "steps": "steps", "cfg": "cfg_scale", "rescale": "guidance_rescale", "classifier_scale": "classifier_scale",
    "clip_skip": "clip_skip", "threshold": "dynamic_threshold", "eta": "eta", "seed": "seed", "width": "width",
    "height": "height", "strength": "strength", "feather": "mask_feather", "resample": "resample",
    "variation_seed": "variation_seed", "variation_strength": "variation_strength",
    "inpaint_area": "inpaint_area", "inpaint_padding": "inpaint_padding", "masked_content": "masked_content",
    "refiner": "refiner", "refiner_switch": "refiner_switch", "guidance": "distilled_cfg",
    "hires_scale": "hires_scale", "hires_steps": "hires_steps", "hires_upscaler": "hires_upscaler",
    "denoise": "hires_denoise",
    "tile": "tile_size", "vae_tile": "vae_tile_size",
}


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _mask_from_file(path: Path, width: int, height: int):
    import numpy as np

    from .io.png import load_image

    mask = load_image(path).astype(np.float32).mean(axis=2) / 255.0
    if mask.shape != (height, width):
        raise ValueError(f"mask {path.name} is {mask.shape[1]}x{mask.shape[0]}, the image is {width}x{height}")
    return mask


def read_params_file(path: Path, overridden: set[str] = frozenset()):
    """The parsed parameters of an image file; ValueError naming the file when there are none to read."""
    from .io.parameters import parse_parameters
    from .io.png import read_parameters

    if not path.exists():
        raise ValueError(f"--params-from {path}: no such file")
    if path.is_dir():
        raise ValueError(f"--params-from {path}: a folder, not an image")
    try:
        text = read_parameters(path)
        if text is None:
            raise ValueError(f"{path.name} carries no generation parameters (no PNG 'parameters' text, no EXIF "
                             f"UserComment)")
        parsed = parse_parameters(text)
    except ValueError as exc:
        raise ValueError(f"--params-from {path}: {exc}") from exc
    if parsed.missing_sampler and "sampler" not in overridden:
        raise ValueError(f"--params-from {path}: its sampler {parsed.missing_sampler!r} is not in this studio; "
                         f"pass --sampler with one of {sampler_list()}")
    for field, notice in parsed.adapted:
        if field not in overridden:
            _note(notice)
    return parsed


def _flag_changes(args) -> dict:
    """The request fields the command line sets: only the flags actually given."""
    changes = {FLAG_FIELDS[dest]: value for dest, value in vars(args).items()
               if dest in FLAG_FIELDS and value is not None}
    if args.karras:
        changes["spacing"] = "karras"
    if args.interval is not None:
        changes["guidance_interval"] = tuple(args.interval)
    if "masked_content" in changes:  # latent-noise on the command line, latent_noise in the request
        changes["masked_content"] = changes["masked_content"].replace("-", "_")
    if "hires_upscaler" in changes:  # "latent" typed, "Latent" written (AUTOMATIC1111's spelling)
        changes["hires_upscaler"] = canonical_upscaler(changes["hires_upscaler"])
    return changes


def model_parts(args) -> dict:
    """The encoder and VAE files and the GPU memory setting given on the command line, for load_model."""
    return {"text_encoders": tuple(getattr(args, "text_encoder", ()) or ()), "vae": getattr(args, "vae", None),
            "offload": getattr(args, "offload", "auto")}


def _load(args, parsed):
    """(model key, model): --model, else the file's studio model, else the default."""
    from .engine.models.registry import ModelLoadError, default_model_key, load_model, model_key

    from_file = parsed.request.model if parsed is not None and "model" in parsed.given else ""
    key = model_key(args.model) if args.model else from_file or default_model_key()
    try:
        return key, load_model(key, device=args.device, **model_parts(args))
    except ModelLoadError as exc:
        if args.model or not from_file:
            raise
        _note(f"the file's model {from_file!r} cannot be loaded here ({exc}): using {default_model_key()}.")
        key = default_model_key()
        return key, load_model(key, device=args.device)


def adapter_library(args, key: str):
    """Where the run's LoRAs, embeddings and ControlNets are found: --lora-dir (LoRAs), the folders beside the
    checkpoint (models/Lora, models/ControlNet, ...), the usual install places."""
    from .engine.models.registry import SD_PREFIX
    from .engine.models.sd.adapter_files import AdapterLibrary

    checkpoint = key[len(SD_PREFIX):] if key.startswith(SD_PREFIX) else None
    return AdapterLibrary((), checkpoint, kind_folders={"lora": tuple(args.lora_dir)})


def _overridden(args) -> set[str]:
    """The request fields the command line decides (the init image decides the size, unless only the masked
    area is inpainted: then the model's size or --width/--height does)."""
    init_sizes = args.init is not None and args.inpaint_area != "masked"
    return set(_flag_changes(args)) | ({"width", "height"} if init_sizes else set())


def recommended_settings(info) -> dict:
    """The request fields a model's own advice sets when neither a flag nor a parameters file does."""
    advice = info.recommended
    fields = {"steps": advice.steps, "cfg_scale": advice.cfg_scale}
    if info.has_classifier:
        fields["classifier_scale"] = advice.classifier_scale
    if info.distilled_guidance and advice.distilled_cfg is not None:
        fields["distilled_cfg"] = advice.distilled_cfg
    if advice.spacing is not None:
        fields["spacing"] = advice.spacing
    if advice.strength is not None:
        fields["strength"] = advice.strength
    return fields


def _request_from_args(args, model, parsed=None, key: str | None = None):
    """The request: the file's settings (or the defaults), then the flags given, fitted to the model."""
    import random

    from .engine.model_fit import ModelTraits, fit_clip_skip, fit_size
    from .engine.request import GenerationRequest
    from .io.png import load_image

    if parsed is None and args.params_from is not None:
        parsed = read_params_file(args.params_from, _overridden(args))
    changes = _flag_changes(args)
    given = set(parsed.given) if parsed is not None else set()
    request = parsed.request if parsed is not None else GenerationRequest()
    init = load_image(args.init) if args.init is not None else None
    # Only masked: a crop around the mask runs at the request's size, so the photo does not set it.
    only_masked = args.mask is not None and changes.get("inpaint_area", request.inpaint_area) == "masked"
    if init is not None and not only_masked:
        changes.setdefault("width", init.shape[1])
        changes.setdefault("height", init.shape[0])
    elif "width" not in given | changes.keys() or "height" not in given | changes.keys():
        changes.setdefault("width", model.info.default_size[0])
        changes.setdefault("height", model.info.default_size[1])
    for field, value in recommended_settings(model.info).items():  # as the window does when a model is picked
        if field not in given | changes.keys():
            changes[field] = value
    if "seed" not in given | changes.keys():
        changes["seed"] = random.randrange(2**32)
    if "strength" not in given | changes.keys():
        changes["strength"] = 0.75 if init is not None and args.mask is None else 1.0
    request = request.with_changes(**changes, model=key if key is not None else request.model)
    if "hires_denoise" in changes and not request.hires:
        raise ValueError("--denoise is the hires pass's denoising strength: add --hires-scale (e.g. 2), or use "
                         "--strength for img2img")
    info = model.info
    traits = ModelTraits(info.name, info.default_size, info.size_multiple, info.clip_skip)
    # What came from the file or the defaults is fitted to the model; a size or clip skip typed on the
    # command line (or an init image's size) is taken as given, and refused by the engine if it cannot work.
    width, height, clip_skip = request.width, request.height, request.clip_skip
    if (init is None or only_masked) and not {"width", "height"} & changes.keys():
        width, height, notice = fit_size(width, height, traits)
        if notice:
            _note(notice)
    if "clip_skip" not in changes:
        clip_skip, notice = fit_clip_skip(clip_skip, traits)
        if notice:
            _note(notice)
    mask_size = (init.shape[1], init.shape[0]) if only_masked and init is not None else (width, height)
    mask = _mask_from_file(args.mask, *mask_size) if args.mask is not None else None
    from_file = parsed.request.controlnets if parsed is not None else ()
    if from_file and not args.controlnet and not args.control_image:
        _note(f"the file's {len(from_file)} ControlNet unit(s) are left out: give a --control-image for each")
        from_file = ()
    return request.with_changes(width=width, height=height, clip_skip=clip_skip, init_image=init, mask=mask,
                                controlnets=control_units(args, from_file))


def _generate(args) -> int:
    from .engine.runner import Runner
    from .io.parameters import format_parameters
    from .io.png import save_image

    check_batch_count(args.batch_count)
    parsed = read_params_file(args.params_from, _overridden(args)) if args.params_from is not None else None
    key, model = _load(args, parsed)
    request = _request_from_args(args, model, parsed, key)
    runner = Runner(model, adapters=adapter_library(args, key))
    started = time.perf_counter()

    def progress(event) -> None:
        if args.quiet:
            return
        done = event.index + 1
        rate = done / max(event.elapsed, 1e-9)
        left = (event.total - done) / rate if rate else 0
        sys.stderr.write(f"\rstep {done}/{event.total}  {rate:.1f} it/s  {left:.1f} s left   ")
        sys.stderr.flush()

    seeds = batch_seeds(request.seed, args.batch_count)
    for seed, out in zip(seeds, batch_outputs(args.out, seeds), strict=True):  # --batch-count: the next seeds
        request = request.with_changes(seed=seed)
        result = runner.run(request, on_step=progress)
        save_image(out, result.image, format_parameters(request, model.info.name, result.infotext))
        if not args.quiet:
            sys.stderr.write("\n")
        for notice in runner.notices if seed == seeds[0] else ():  # the same notes for every seed
            _note(notice)
        print(f"wrote {out} ({result.image.shape[1]}x{result.image.shape[0]}, seed {request.seed}, "
              f"{time.perf_counter() - started:.2f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .engine.models.registry import ModelLoadError
    from .engine.runner import NonFiniteError

    try:
        if getattr(args, "server", None) and args.command in ("models", "generate"):
            return run_remote_models(args) if args.command == "models" else run_remote_generate(args)
        if args.command == "models":
            from .engine.models.registry import scan_models

            entries, skipped = scan_models()
            for entry in entries:
                print(f"{entry.key:12s} {entry.family:10s} {entry.label}")
            for reason in skipped:
                print(f"skipped: {reason}", file=sys.stderr)
            return 0
        if args.command == "xyz":
            return run_xyz(args)
        if args.command == "upscale":
            return run_upscale(args)
        if args.command == "serve":
            from .serve.cli import run_serve

            return run_serve(args)
        return _generate(args)
    except (ValueError, ModelLoadError, NonFiniteError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line, whatever the message holds
        return 2
    except (RuntimeError, MemoryError) as exc:
        from .engine.devices import is_out_of_memory

        if not is_out_of_memory(exc):
            raise
        print(f"error: out of memory ({str(exc).splitlines()[0][:200] or type(exc).__name__}); try a smaller "
              "--width and --height or fewer --steps", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
