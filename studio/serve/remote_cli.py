"""``python -m studio generate --server URL``: the same request a local run would make, run by a studio server.

The request is built by the command line's own code (studio/cli.py), with the server's word on the model
(its size and recommended settings) in place of a loaded model's, so the image written is the one a local run
with the same seed writes on the same device and model: same pixels, same parameters text. The run streams
its progress as a local one prints it; Ctrl+C closes the stream, which cancels the run on the server.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

TOKEN_ENV = "DIFFUSION_STUDIO_TOKEN"  # a token kept out of the shell's history and of `ps`
LOCAL_ONLY = {"text_encoder": "--text-encoder", "vae": "--vae", "lora_dir": "--lora-dir"}


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=None, metavar="URL",
                        help="run on a studio server (python -m studio serve) at URL, e.g. http://gpu-box:8188; "
                             "--model names one of its models (python -m studio models --server URL)")
    parser.add_argument("--token", default=None, metavar="T",
                        help=f"the server's token (default: ${TOKEN_ENV})")


@dataclass(frozen=True)
class ServerAdvice:
    """A model's own advice, as the server reports it (models/base.Recommended's fields)."""

    steps: int = 20
    cfg_scale: float = 5.0
    classifier_scale: float = 0.0
    distilled_cfg: float | None = None
    spacing: str | None = None
    strength: float | None = None


@dataclass(frozen=True)
class ServerModelInfo:
    """What the command line's request building reads of a model (models/base.ModelInfo's names), from the server."""

    name: str
    default_size: tuple[int, int] | None = None
    size_multiple: int = 8
    clip_skip: bool = False
    has_classifier: bool = False
    distilled_guidance: bool = False
    recommended: ServerAdvice = field(default_factory=ServerAdvice)


@dataclass(frozen=True)
class ServerModel:
    info: ServerModelInfo


def model_from_json(data: dict[str, Any]) -> ServerModel:
    """A model as ``GET /v1/models/{key}`` describes it (a ModelChoice's fields); what it leaves out keeps the
    engine's defaults."""
    advice = data.get("recommended") if isinstance(data.get("recommended"), dict) else {}
    known = {k: advice[k] for k in ("steps", "cfg_scale", "classifier_scale", "distilled_cfg", "spacing", "strength")
             if k in advice}
    size = data.get("default_size")
    return ServerModel(ServerModelInfo(
        name=str(data.get("label") or data.get("key") or ""),
        default_size=(int(size[0]), int(size[1])) if isinstance(size, list | tuple) and len(size) == 2 else None,
        size_multiple=int(data.get("size_multiple") or 8), clip_skip=bool(data.get("clip_skip")),
        has_classifier=bool(data.get("has_classifier")), distilled_guidance=bool(data.get("distilled_guidance")),
        recommended=ServerAdvice(**known)))


def server_token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get(TOKEN_ENV) or None


def run_remote_models(args: argparse.Namespace) -> int:
    """``python -m studio models --server URL``: the server's models, as ``models`` lists this install's."""
    from .client import StudioServer

    async def listing() -> dict[str, Any]:
        async with StudioServer(args.server, server_token(args)) as server:
            return await server.models()

    answer = _run(listing())
    for entry in answer.get("models", []):
        mark = "  (default)" if entry.get("key") == answer.get("default") else ""
        print(f"{entry.get('key', ''):12s} {entry.get('family', ''):10s} {entry.get('label', '')}{mark}")
    return 0


def run_remote_generate(args: argparse.Namespace) -> int:
    refuse_local_files(args)
    return _run(_generate(args))


def upscale_on_server(args: argparse.Namespace, image, tile: int, on_progress) -> tuple[Any, str]:
    """``python -m studio upscale --server URL``: (the upscaled image, the upscaler's label) from the server."""
    from .client import StudioServer

    async def upscale() -> tuple[Any, str]:
        async with StudioServer(args.server, server_token(args)) as server:
            async for event in server.upscale(image, args.upscaler, args.scale, tile):
                if event["type"] == "progress":
                    on_progress(int(event["done"]), int(event["total"]))
                elif event["type"] == "result":
                    return event["image"], str(event.get("label") or args.upscaler)
        raise ValueError("the server cancelled the upscale (it is shutting down?); run it again")

    return _run(upscale(), {"upscaler": "--upscaler", "scale": "--scale", "tile": "--tile", "image": "IN"})


def refuse_local_files(args: argparse.Namespace) -> None:
    """ValueError for a flag naming files on this computer, which a server cannot open."""
    for dest, flag in LOCAL_ONLY.items():
        if getattr(args, dest, None):
            raise ValueError(f"{flag} names files on this computer; with --server the server uses the files in its "
                             "own model folders: leave it out")


def _run(coroutine, flags: dict[str, str] | None = None) -> Any:
    """Run on a loop of its own; a server's refusal or silence becomes the command line's one-line ValueError
    (naming the flag of the field at fault: ``flags``, by field, default generate's)."""
    import asyncio

    from .client import ServerError, ServerUnreachable

    try:
        return asyncio.run(coroutine)
    except ServerError as exc:
        raise ValueError(_with_flag(exc, flags)) from None
    except ServerUnreachable as exc:
        raise ValueError(str(exc)) from None


def _with_flag(exc, flags: dict[str, str] | None = None) -> str:
    """The server's message, with the flag that sets the field at fault."""
    if flags is None:
        from ..cli import FLAG_FIELDS

        flags = {request_field: "--" + dest.replace("_", "-") for dest, request_field in FLAG_FIELDS.items()}
        flags.update({"model": "--model", "init_image": "--init", "mask": "--mask", "controlnets": "--controlnet"})
    flag = flags.get(exc.field or "")
    return f"{exc} ({flag})" if flag and flag not in str(exc) else str(exc)


async def server_request(server, args: argparse.Namespace, parsed=None):
    """(the request the command line builds for ``args``, with the server's word on the model; the server's
    catalog of models, samplers and spacings)."""
    from ..cli import _note, _request_from_args
    from .client import ServerError

    catalog = await server.models()
    keys = [m.get("key") for m in catalog.get("models", [])]
    from_file = parsed.request.model if parsed is not None and "model" in parsed.given else ""
    key = args.model or (from_file if from_file in keys else "") or catalog.get("default") or ""
    if from_file and not args.model and from_file not in keys:
        _note(f"the file's model {from_file!r} is not on the server: using {key}.")
    if key not in keys:
        raise ServerError(404, f"the server has no model {key!r}; it has {', '.join(map(str, keys)) or 'none'}",
                          "model")
    model = await _describe(server, key, next(m for m in catalog["models"] if m.get("key") == key))
    return _request_from_args(args, model, parsed, key), catalog


async def _generate(args: argparse.Namespace) -> int:
    from ..batch_cli import batch_seeds, check_batch_count
    from ..cli import _overridden, read_params_file
    from .client import StudioServer

    check_batch_count(args.batch_count)
    parsed = read_params_file(args.params_from, _overridden(args)) if args.params_from is not None else None
    started = time.perf_counter()
    async with StudioServer(args.server, server_token(args)) as server:
        request, _ = await server_request(server, args, parsed)
        seeds = batch_seeds(request.seed, args.batch_count)
        if len(seeds) > 1:  # --batch-count: the seeds side by side on the server's replicas
            from .fanout_cli import write_batch

            return await write_batch(args, server, request, seeds)
        height, width = await _run_one(server, request, args.out, args.quiet, True)
        print(f"wrote {args.out} ({width}x{height}, seed {request.seed}, {time.perf_counter() - started:.2f} s, "
              f"on {server.url})")
    return 0


async def _run_one(server, request, out, quiet: bool, notes: bool) -> tuple[int, int]:
    """One run on the server, its progress on stderr, its PNG (the server's pixels and parameters) at ``out``."""
    from contextlib import aclosing

    from ..cli import _note
    from ..io.png import save_image
    from .client import run_payload

    result = None
    async with aclosing(server.run(run_payload(request))) as events:
        async for event in events:
            if event["type"] == "step" and not quiet:
                _progress(event)
            elif event["type"] == "result":
                result = event
            elif event["type"] == "cancelled":
                raise ValueError(f"the run was cancelled on the server at step {event.get('step', 0) + 1}")
    if not quiet:
        sys.stderr.write("\n")
    save_image(out, result["image"], result["parameters"])
    for notice in result.get("notices") or () if notes else ():  # what the engine adapted, as a local run notes it
        _note(str(notice))
    return result["image"].shape[:2]


async def _describe(server, key: str, entry: dict[str, Any]) -> ServerModel:
    """The model's size and advice from the server; a server that cannot say leaves the engine's defaults."""
    from ..cli import _note
    from ..engine.request import GenerationRequest
    from .client import ServerError

    try:
        return model_from_json(await server.model(key))
    except ServerError as exc:
        if exc.status not in (404, 405) or exc.field == "model":
            raise
    _note(f"the server does not describe {key}: its size and recommended settings are not applied (give --width, "
          "--height, --steps and --cfg)")
    default = GenerationRequest()
    return model_from_json(entry | {"default_size": (default.width, default.height)})


def _progress(event: dict[str, Any]) -> None:
    """The local run's progress line (studio/cli.py), from a step event."""
    done = int(event["index"]) + 1
    rate = done / max(float(event["elapsed"]), 1e-9)
    left = (int(event["total"]) - done) / rate if rate else 0
    sys.stderr.write(f"\rstep {done}/{event['total']}  {rate:.1f} it/s  {left:.1f} s left   ")
    sys.stderr.flush()
