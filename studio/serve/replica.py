"""One engine replica: the studio's Runner on one device, running one request at a time off its event loop.

Ray-free (studio/serve/app.py wraps it in a deployment), so it can be driven directly. ``run`` is an async
generator of event objects: the NDJSON events of the HTTP API, each step event with a ``_state`` entry (the
step's state as a run_export blob, for the ingress to keep; never sent to clients); ``upscale`` is one for an
upscale (studio/serve/upscales.py). Its event loop stays free while a run steps on the replica's own thread, so a
closed stream stops the run before its next step, and each event is encoded on a third thread, in order, while the
run goes on.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from ..engine.devices import is_out_of_memory, pick_device
from ..engine.limits import max_side
from ..engine.models.registry import ModelLoadError, default_model_key, load_model
from ..engine.models.sd.adapter_files import AdapterLibrary
from ..engine.request import GenerationRequest, RequestError
from ..engine.run_export import export_history, import_history
from ..engine.runner import Cancelled, NonFiniteError, Runner
from ..io.parameters import format_parameters
from .options import ServerOptions
from .upscales import UpscaleOrder
from .wire import png_b64, step_to_json

_DONE = object()
STATE = "_state"  # a step event's key for the step's state, which the ingress keeps and never sends on


class EngineReplica:
    """The Runner of one replica, with the runs it holds (by the server's run ids) for branching."""

    def __init__(self, options: ServerOptions, name: str = "local"):
        self.options = options
        self.name = name
        self.device = str(pick_device(options.device))
        torch.set_num_threads(options.torch_threads())
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="engine")
        # Where each event is encoded (preview PNG, step state) and sent, in order: beside the run, so the run's
        # thread goes on to the next step meanwhile (a full-size preview takes milliseconds to encode).
        self._encoder = ThreadPoolExecutor(1, thread_name_prefix="encode")
        # The upscalers a client may name: the server's folders only, and names only (listed again when they change).
        self._upscalers = AdapterLibrary(options.model_folders, None, include_defaults=False, allow_paths=False)
        self._runner: Runner | None = None
        self._key: str | None = None
        self._held: OrderedDict[str, int] = OrderedDict()  # run id -> the runner's run id
        self.default_model = options.default_model or default_model_key()
        self._ensure(self.default_model)  # now: the first run does not wait for the load

    def _ensure(self, key: str) -> Runner:
        """The runner for ``key``, loading it in place of the current model (ModelLoadError when it cannot)."""
        if self._runner is None or key != self._key:
            model = load_model(key, self.device)
            checkpoint = key[3:] if key.startswith("sd:") else None
            # The server's folders only, and names only: a client's text never opens a file outside them.
            library = AdapterLibrary(self.options.model_folders, checkpoint, include_defaults=False, allow_paths=False)
            self._runner = Runner(model, adapters=library)
            self._key = key
            self._held.clear()  # another model's step states branch nowhere on this one
        return self._runner

    async def describe(self, key: str) -> dict[str, Any]:
        """``key`` as the studio's panel and command line need it (loaded here when it is not the model loaded):
        model_json's fields, or {"error"} when it cannot be loaded."""
        loop = asyncio.get_running_loop()
        try:  # on the run thread: a load never races a run on this replica
            runner = await loop.run_in_executor(self._executor, self._ensure, key)
        except Exception as exc:  # noqa: BLE001 - a file that cannot be loaded is the user's to fix: say why
            return failure_event(exc)
        return model_json(key, runner.model.info)

    def run(self, run_id: str, request: GenerationRequest, branch: dict[str, Any] | None = None,
            latents: bool = False) -> AsyncIterator[dict[str, Any]]:
        """The run's events: started, then a step event per step (with its _state), then its end (result,
        cancelled or error). Closing the generator stops the run before its next step."""
        return self._stream(run_id, self._run, (run_id, request, branch, latents))

    def upscale(self, upscale_id: str, order: UpscaleOrder) -> AsyncIterator[dict[str, Any]]:
        """An upscale's events (studio/serve/upscales.py): started, progress after each tile, then its end.
        Closing the generator stops it after the tile it is on."""
        return self._stream(upscale_id, self._upscale, (upscale_id, order))

    async def _stream(self, job_id: str, work: Callable[..., None], args: tuple) -> AsyncIterator[dict[str, Any]]:
        """``work``'s events as it makes them on the replica's thread, while this event loop stays free."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def send(make: Callable[[], Any]) -> None:
            """From the run's thread: ``make()`` runs on the encoder thread and its event goes out after every
            event sent before it."""
            def encode() -> None:
                try:
                    item = make()
                except BaseException as exc:  # noqa: BLE001 - an event that cannot be made says why instead
                    item = failure_event(exc)
                loop.call_soon_threadsafe(queue.put_nowait, item)

            self._encoder.submit(encode)

        yield {"type": "started", "run": job_id, "replica": self.name}
        loop.run_in_executor(self._executor, self._events_of, work, args, send, cancel)
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
        finally:
            cancel.set()  # a closed stream (client gone, run cancelled): stop before the next step

    def _events_of(self, work: Callable[..., None], args: tuple, send: Callable[[Callable[[], Any]], None],
                   cancel: threading.Event) -> None:
        """``work(*args, send, cancel)`` on the replica's thread, its stream always ended: by its own last event,
        a cancelled event, or an error event that says why."""
        try:
            if not cancel.is_set():
                work(*args, send, cancel)
        except Cancelled as exc:
            event = {"type": "cancelled", "run": args[0], "step": exc.step}
            send(lambda: event)
        except BaseException as exc:  # noqa: BLE001 - every failure ends the stream with a message, never silence
            event = failure_event(exc)
            send(lambda: event)
        finally:
            send(lambda: _DONE)

    def _upscale(self, upscale_id: str, order: UpscaleOrder, send: Callable[[Callable[[], Any]], None],
                 cancel: threading.Event) -> None:
        from ..engine.upscalers import upscale_image, upscaler_label

        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if cancel.is_set():
                raise Cancelled(0, done)  # "step": the tiles finished
            event = {"type": "progress", "run": upscale_id, "done": done, "total": total}
            send(lambda: event)

        library = self._upscalers
        try:
            image = upscale_image(order.image, order.scale, order.upscaler, library=library, tile=order.tile,
                                  device=self.device, on_progress=progress)
        except ModelLoadError as exc:
            raise RequestError("upscaler", f"could not use the upscaler file: {exc}") from exc
        except Exception as exc:
            if is_out_of_memory(exc):
                raise RequestError("scale", "out of memory on the server while upscaling: choose a smaller factor or "
                                            "tile, or Lanczos") from exc
            raise
        label, elapsed = upscaler_label(order.upscaler, library), time.perf_counter() - started
        send(lambda: {"type": "result", "run": upscale_id, "image": png_b64(image), "label": label,
                      "scale": order.scale, "elapsed": elapsed})

    def _run(self, run_id: str, request: GenerationRequest, branch: dict[str, Any] | None, latents: bool,
             send: Callable[[Callable[[], Any]], None], cancel: threading.Event) -> None:
        runner = self._ensure(request.model or self.default_model)
        branch_from = self._branch_point(runner, branch) if branch else None
        sent = 0

        def on_step(event) -> None:
            nonlocal sent
            history = runner.history(event.run_id)
            self._hold(run_id, event.run_id)
            first, sent = sent, len(history.states)
            upto = sent - 1

            def step_item() -> dict[str, Any]:  # one item a step: less to stream
                blob = export_history(history, upto=upto, first=first, header=first == 0)
                return step_to_json(event, run_id, latents) | {STATE: blob}

            send(step_item)  # made beside the run (its states are never changed), which goes on to the next step

        try:
            result = runner.run(request, on_step=on_step, should_cancel=cancel.is_set, branch_from=branch_from)
        except Cancelled as exc:
            self._hold(run_id, exc.run_id)
            raise
        self._hold(run_id, result.run_id)
        text = format_parameters(request, runner.model.info.name, result.infotext)
        # Read now: the runner may be on its next run (another model, other notices) when the PNG is made.
        event = {"type": "result", "run": run_id, "parameters": text, "steps_run": result.steps_run,
                 "elapsed": result.elapsed, "parent": [branch["run"], branch["step"]] if branch else None,
                 "label": runner.model.info.name, "notices": list(runner.notices)}
        send(lambda: event | {"image": png_b64(result.image, text)})

    def _branch_point(self, runner: Runner, branch: dict[str, Any]) -> tuple[int, int]:
        """(runner run id, step) for a branch: the run as this replica holds it, or adopted from its state."""
        parent, step = branch["run"], branch["step"]
        local = self._held.get(parent)
        if local is None or runner.history(local) is None:
            state = branch.get("state")
            if state is None:
                raise RequestError("branch", f"run {parent} is not held here and no state came with the branch")
            local = runner.adopt(import_history(state, self.device))
            self._hold(parent, local)
        return local, step

    def _hold(self, run_id: str, local: int) -> None:
        self._held[run_id] = local
        self._held.move_to_end(run_id)
        while len(self._held) > max(self.options.keep_runs, 1):
            self._held.popitem(last=False)


def model_json(key: str, info) -> dict[str, Any]:
    """A loaded model's ModelChoice fields (studio/state/jobs.py) for ``GET /v1/models/{key}``."""
    advice = info.recommended
    return {"key": key, "label": info.name, "family": info.family, "has_classifier": info.has_classifier,
            "default_size": list(info.default_size), "size_multiple": info.size_multiple,
            "clip_skip": info.clip_skip, "max_side": max_side(info.family),
            "distilled_guidance": info.distilled_guidance,
            "recommended": {"steps": advice.steps, "cfg_scale": advice.cfg_scale,
                            "classifier_scale": advice.classifier_scale, "distilled_cfg": advice.distilled_cfg,
                            "spacing": advice.spacing, "strength": advice.strength}}


def failure_event(exc: BaseException) -> dict[str, Any]:
    """An error event whose message says what went wrong and what to try."""
    if isinstance(exc, RequestError):
        return {"type": "error", "error": str(exc), "field": exc.field}
    if isinstance(exc, ModelLoadError):
        return {"type": "error", "error": f"could not use the model: {exc}", "field": "model"}
    if isinstance(exc, NonFiniteError):
        return {"type": "error", "error": f"the image went bad: {exc}", "field": None}
    if is_out_of_memory(exc):
        return {"type": "error", "error": "out of memory on the server: try a smaller width and height or fewer "
                                          "steps", "field": None}
    traceback.print_exception(exc, file=sys.stderr)  # the replica's log keeps what the message cannot
    return {"type": "error", "error": f"the engine failed: {type(exc).__name__}: {exc}", "field": None}
