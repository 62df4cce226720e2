"""The window's engine on a studio server: EngineClient's signals and methods over studio/serve/client.py.

It runs on the UI thread, in asyncio tasks on Qt's own loop (qt_asyncio.py), so its signals reach the window
like the engine thread's do and nothing in the UI changes. The server's run ids (strings) get local ints, which
the timeline keeps; each finished or cancelled run's state blob is fetched and kept, so a branch from the
timeline posts it back and is exact on whichever replica takes it.

A connection that drops is retried: ``connection`` says so (the window shows it in its banner), the job stays
running, and once the server answers again it is sent again; the steps that had come stay in the timeline.

The pickers' adapter names and the line under the prompt box come from the server too (``GET /v1/adapters``,
``POST /v1/prompts/describe``): its own folders, its own models. Upscales run there too (``POST /v1/upscales``,
remote_upscale.py), with the server's upscaler files.

Several jobs run at once (a batch, the cells of an X/Y/Z plot): ``parallel_jobs`` tells the window's queue how many,
the server's replicas times two (each replica runs one while the next waits, as studio/serve/fanout.py does for the
command line), so each job streams into its own run as its replica makes it. A job the server's per-client limit
turns away (429) waits and is sent again; one lost with its replica is sent once more, then fails alone.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ..engine.run_ids import next_run_id
from ..serve.client import Branch, ServerError, ServerUnreachable, StudioServer, run_payload
from ..serve.fanout import DEFAULT_PER_REPLICA, TOO_MANY_RUNS, worth_retrying
from ..state.jobs import (
    AdapterCatalog,
    AdapterChoice,
    EngineCatalog,
    Job,
    JobFailure,
    JobResult,
    ModelChoice,
    RecommendedSettings,
    StepPreview,
)
from ..state.upscale_jobs import UpscaleJob
from .engine_signals import EngineSignals
from .job_request import request_for_job
from .qt_asyncio import spawn
from .remote_upscale import RemoteUpscale, upscale_on_server

RETRY_S = 2.0  # how often an unreachable server is asked again
KEPT_STATE_BYTES = 512 * 2**20  # state blobs kept for branching; the oldest runs' go first
BUSY_RETRY_S = 0.5  # how often a job the server's queue limit turned away (429) is sent again
RETRIES = 1  # extra tries for a job whose replica was lost under it (another replica takes it)


@dataclass
class RemoteRun:
    """A run the server made for this window: its id there, its last step, and its state blob once fetched."""

    server_id: str
    last_step: int = -1
    state: asyncio.Task | None = None  # -> bytes | None
    replica: str = ""  # the replica that made it (its "started" event)


@dataclass
class RemoteJob:
    """A job this window sent: its run on the server once started, and whether the user cancelled it."""

    job: Job
    run: RemoteRun | None = None
    cancelled: bool = False


def model_choice(data: dict[str, Any]) -> ModelChoice:
    """A ModelChoice from the server's JSON (its fields by name; what is missing stays unknown)."""
    advice = data.get("recommended")
    recommended = None
    if isinstance(advice, dict) and "steps" in advice and "cfg_scale" in advice:
        recommended = RecommendedSettings(int(advice["steps"]), float(advice["cfg_scale"]),
                                          float(advice.get("classifier_scale") or 0.0), advice.get("distilled_cfg"),
                                          advice.get("spacing"), advice.get("strength"))
    size = data.get("default_size")
    return ModelChoice(
        str(data["key"]), str(data.get("label") or data["key"]), data.get("has_classifier"),
        (int(size[0]), int(size[1])) if isinstance(size, list | tuple) and len(size) == 2 else None,
        int(data.get("size_multiple") or 8), recommended, bool(data.get("clip_skip")), data.get("max_side"),
        str(data.get("family") or ""), bool(data.get("distilled_guidance")),
        tuple(str(line) for line in data.get("loaded_as") or ()))


class RemoteEngineClient(EngineSignals):
    connection = Signal(str)  # why the server cannot be reached (retrying); "" once it answers again

    def __init__(self, url: str, token: str = "", parent: QObject | None = None):
        super().__init__(parent)
        self.server = StudioServer(url, token or None)  # ValueError on an address that cannot work
        self.started = False
        self._catalog: EngineCatalog | None = None
        self._entries: dict[str, dict[str, Any]] = {}
        self._runs: OrderedDict[int, RemoteRun] = OrderedDict()  # local run id -> its run on the server
        self._next_token = 1
        self._jobs: dict[int, RemoteJob] = {}  # the jobs sent and not yet settled, by job id
        self._upscales: dict[int, RemoteUpscale] = {}  # the upscales sent and not yet ended, by job id
        self._parallel = 1  # jobs the server takes at once: replicas x DEFAULT_PER_REPLICA (see its health)
        self._model_key = ""  # the model last described (its adapters are the ones listed)
        self._adapters = AdapterCatalog()  # the server's adapter names last listed (the catalog carries them too)
        self._lost = False
        self._tasks: set[asyncio.Task] = set()

    @property
    def where(self) -> str:
        return self.server.url

    @property
    def parallel_jobs(self) -> int:
        """How many jobs the window may have running here at once (one until the server has answered)."""
        return self._parallel

    def replica_of(self, run_id: int) -> str:
        """The server's replica that made the run the timeline knows as ``run_id`` ("" when not known)."""
        run = self._runs.get(run_id)
        return run.replica if run is not None else ""

    # -- EngineClient's methods ----------------------------------------------------------------------
    def start(self, device: str = "auto", threads: int = 0, model_key: str = "",
              model_folders: tuple[str, ...] = (), model_parts: dict | None = None) -> None:
        """Reach the server (retrying while it cannot be reached), report its models, describe ``model_key``.
        Device, threads and folders are the server's own."""
        self.started = True
        self._spawn(self._start(model_key))

    def rescan(self, model_folders: tuple[str, ...] = ()) -> None:
        if self.started:
            self._spawn(self._relist())

    def set_model_parts(self, model_parts: dict) -> None:
        """Encoder and VAE files are the server's: it finds them in its own folders."""

    def list_adapters(self) -> None:
        """The server's LoRAs, embeddings, ControlNets and upscalers for the model in use (its own folders)."""
        if self.started:
            self._spawn(self._list_adapters())

    def preload(self, model_key: str) -> None:
        if self.started:
            self._spawn(self._describe(model_key))

    def submit(self, job: Job) -> None:
        # Known at once, before its task first runs: a Cancel right after Generate reaches it.
        sent = self._jobs[job.job_id] = RemoteJob(job)
        self._spawn(self._run_job(sent), job)

    def upscale(self, job: UpscaleJob) -> None:
        """Upscale on the server, with its Lanczos or one of its upscaler files (the picker lists the server's)."""
        sent = self._upscales[job.job_id] = RemoteUpscale(job)

        async def upscale() -> None:
            try:
                await upscale_on_server(self.server, sent, self, lambda run: self._spawn(self._cancel_on_server(run)),
                                        BUSY_RETRY_S)
            finally:
                self._upscales.pop(job.job_id, None)

        self._spawn(upscale())

    def cancel(self, job_id: int | None = None) -> None:
        """Stop ``job_id`` (every job sent, when None) before its next step; returns at once."""
        for sent in list(self._jobs.values()):
            if job_id in (None, sent.job.job_id) and not sent.cancelled:
                sent.cancelled = True
                if sent.run is not None:
                    self._spawn(self._cancel_on_server(sent.run.server_id))
        for upscale in list(self._upscales.values()):
            if job_id in (None, upscale.job.job_id) and not upscale.cancelled:
                upscale.cancelled = True  # the server stops it after its current tile
                if upscale.server_id:
                    self._spawn(self._cancel_on_server(upscale.server_id))

    def describe(self, model_key: str, prompt: str) -> int:
        """Ask the server what the model makes of ``prompt``; ``described`` answers with this token ("" when the
        model cannot say, or the server does not answer)."""
        token = self._next_token
        self._next_token += 1
        if self.started:
            self._spawn(self._describe_prompt(token, model_key or self._model_key or self._default_model(), prompt))
        else:
            # With self as the context: a client deleted before the timer fires (the window closing) drops it.
            QTimer.singleShot(0, self, lambda: self.described.emit(token, ""))
        return token

    def stop(self, wait_ms: int = 0) -> None:
        """Cancel what runs (closing its stream cancels it on the server) and close the connection."""
        self.started = False
        for task in list(self._tasks):
            task.cancel()
        self._jobs.clear()
        self._upscales.clear()
        if self.server.is_open:
            spawn(self.server.close())

    # -- the work, on Qt's loop ------------------------------------------------------------------------
    def _spawn(self, coroutine, job: Job | None = None) -> None:
        def failed(exc: BaseException) -> None:  # a bug of ours: said in the window, never a silent hang
            import sys
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
            message = f"The server client failed: {type(exc).__name__}: {exc}"
            if job is not None:
                self._jobs.pop(job.job_id, None)
                self.failed.emit(JobFailure(job.job_id, message))
            else:
                self.start_failed.emit(message)

        task = spawn(coroutine, failed)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reach(self, is_cancelled=lambda: False) -> bool:
        """Wait until the server answers (True) or ``is_cancelled()`` (False); say so while it does not."""
        while True:
            try:
                await self.server.health()
            except ServerError:
                pass  # it answered: what it refuses (a token) is said by the call that needs it
            except ServerUnreachable as exc:
                if not self._lost:
                    self._lost = True
                    self.status.emit("Server unreachable — retrying")
                    self.connection.emit(f"Lost the studio server: {exc}. Retrying every {RETRY_S:g} s; the steps "
                                         "already received stay in the timeline.")
                for _ in range(int(RETRY_S / 0.1)):
                    if is_cancelled():
                        return False
                    await asyncio.sleep(0.1)
                continue
            if self._lost:
                self._lost = False
                self.connection.emit("")
            return True

    async def _start(self, model_key: str) -> None:
        self.status.emit(f"Connecting to {self.where}…")
        await self._reach()
        try:
            await self._list_models()  # health too: a wrong token is refused here
        except ServerError as exc:
            self.start_failed.emit(f"The studio server at {self.where} refused the studio: {exc}")
            self.status.emit("Server refused the connection")
            return
        await self._describe(model_key)

    async def _relist(self) -> None:
        try:
            await self._list_models()
        except (ServerError, ServerUnreachable) as exc:
            self.failed.emit(JobFailure(-1, f"Could not list the server's models: {exc}"))

    async def _list_models(self) -> None:
        health = await self.server.health()
        answer = await self.server.models()
        self._entries = {str(m["key"]): m for m in answer.get("models", []) if isinstance(m, dict) and "key" in m}
        models = tuple(ModelChoice(key, str(m.get("label") or key), family=str(m.get("family") or ""))
                       for key, m in self._entries.items())
        samplers = tuple((str(s[0]), str(s[1])) for s in answer.get("samplers", []) if len(s) == 2)
        device = f"{health.get('device', '?')} on {self.where}"
        self._parallel = parallel_jobs(health)
        self._catalog = EngineCatalog(models, samplers, tuple(answer.get("spacings", ())),
                                      str(answer.get("default") or (models[0].key if models else "")), device,
                                      adapters=self._adapters)
        self.ready.emit(self._catalog)

    def _default_model(self) -> str:
        return self._catalog.default_model if self._catalog is not None else ""

    async def _describe(self, model_key: str) -> ModelChoice | None:
        key = model_key or self._default_model()
        if not key:
            return None
        self.status.emit("Loading model…")
        try:
            choice = model_choice(await self.server.model(key))
        except ServerError as exc:
            if exc.status in (404, 405) and exc.field != "model" and key in self._entries:
                choice = model_choice(self._entries[key])  # a server that does not describe models: the list's
            else:
                self.failed.emit(JobFailure(-1, f"Could not use the model — {exc}.", field="model"))
                self.status.emit(f"Ready · on {self.where}")
                return None
        except ServerUnreachable as exc:
            self.status.emit("Server unreachable")
            self.failed.emit(JobFailure(-1, str(exc)))
            return None
        self._model_key = key
        self.model_loaded.emit(choice)
        self.status.emit(f"Ready · {choice.label} on {self.where}")
        await self._list_adapters()  # as this computer's engine reports them after a load
        return choice

    async def _list_adapters(self) -> None:
        try:
            answer = await self.server.adapters(self._model_key)
        except (ServerError, ServerUnreachable):
            return  # an older server without the list, or none reachable: the pickers stay as they were
        where = f"on the server {self.where}"
        found = {kind: tuple(AdapterChoice(str(name), where) for name in answer.get(kind, ()) if isinstance(name, str))
                 for kind in ("lora", "embedding", "controlnet", "upscaler")}
        self._adapters = AdapterCatalog(found["lora"], found["embedding"], found["controlnet"], found["upscaler"])
        self.adapters_listed.emit(self._adapters)

    async def _describe_prompt(self, token: int, model_key: str, prompt: str) -> None:
        text = ""
        if model_key and prompt.strip():
            try:
                text = await self.server.describe(model_key, prompt)
            except (ServerError, ServerUnreachable):
                pass  # an older server, or a model it cannot load: no line, as for a model that cannot say
        self.described.emit(token, text)

    async def _cancel_on_server(self, server_id: str) -> None:
        try:
            await self.server.cancel(server_id)
        except (ServerError, ServerUnreachable):
            pass  # the run ended meanwhile, or the stream is gone (which cancels it too)

    async def _run_job(self, sent: RemoteJob) -> None:
        try:
            if sent.cancelled:
                self.failed.emit(JobFailure(sent.job.job_id, "Cancelled before it was sent.", cancelled=True))
                return
            await self._run_until_settled(sent)
        finally:
            self._jobs.pop(sent.job.job_id, None)

    async def _run_until_settled(self, sent: RemoteJob) -> None:
        job = sent.job
        key = job.values.model or self._default_model()
        request = request_for_job(job, key)
        branch = None
        if job.branch_from is not None:
            parent = self._runs.get(job.branch_from[0])
            if parent is None:
                self.failed.emit(JobFailure(job.job_id, "That run was made by another engine, or its steps are no "
                                                        "longer kept: branch from a run made on this server."))
                return
            state = await parent.state if parent.state is not None else None
            branch = Branch(parent.server_id, job.branch_from[1], state)
        self.status.emit(f"Generating · {job.label}")
        tries = 0
        while True:
            try:
                await self._stream(sent, key, run_payload(request, branch))
                return
            except ServerUnreachable:
                if sent.cancelled:
                    self.failed.emit(JobFailure(job.job_id, "Cancelled.", cancelled=True))
                    return
                sent.run = None
                if not await self._reach(lambda: sent.cancelled):
                    self.failed.emit(JobFailure(job.job_id, "Cancelled while the server could not be reached.",
                                                cancelled=True))
                    return
                self.status.emit(f"Generating · {job.label} (sent again)")
                continue
            except ServerError as exc:
                sent.run = None
                if exc.status == TOO_MANY_RUNS:  # runs of ours (or this token's elsewhere) fill the server's queue
                    if not await self._wait_busy(sent):
                        self.failed.emit(JobFailure(job.job_id, "Cancelled while waiting for the server's queue.",
                                                    cancelled=True))
                        return
                    continue
                if worth_retrying(exc) and tries < RETRIES and not sent.cancelled:
                    tries += 1  # its replica was lost under it: another one takes it
                    self.status.emit(f"Generating · {job.label} (sent again: {exc})")
                    continue
                if exc.field == "model":
                    message = f"Could not use the model — {exc}."
                elif exc.field or exc.status == 400:
                    message = f"Cannot generate — {exc}"
                else:
                    message = f"The server could not run it: {exc}"
                self.failed.emit(JobFailure(job.job_id, message, field=exc.field))
                self._ready_unless_busy(f"Ready · on {self.where}")
                return

    async def _wait_busy(self, sent: RemoteJob) -> bool:
        """Wait a moment before a job the server's queue limit turned away is sent again; False when cancelled."""
        self.status.emit(f"Waiting for the server's queue · {sent.job.label}")
        for _ in range(int(BUSY_RETRY_S / 0.1)):
            if sent.cancelled:
                return False
            await asyncio.sleep(0.1)
        return not sent.cancelled

    async def _stream(self, sent: RemoteJob, key: str, payload: dict[str, Any]) -> None:
        job = sent.job
        local_id = None
        run = None
        async with aclosing(self.server.run(payload)) as events:
            async for event in events:
                kind = event.get("type")
                if kind == "started":
                    local_id, run = self._new_run(str(event["run"]))
                    run.replica = str(event.get("replica") or "")
                    sent.run = run
                    if sent.cancelled:
                        self._spawn(self._cancel_on_server(run.server_id))
                elif kind == "step" and run is not None:
                    run.last_step = int(event["index"])
                    self.step.emit(StepPreview(job.job_id, local_id, int(event["index"]), int(event["total"]),
                                               float(event.get("sigma") or 0.0), event["preview"],
                                               float(event.get("elapsed") or 0.0), job.branch_from,
                                               bool(event.get("model_switch")), bool(event.get("hires_start"))))
                elif kind == "result" and run is not None:
                    self._keep_state(run)
                    values = job.values.with_changes(model=key)
                    label = str(event.get("label") or self._entries.get(key, {}).get("label") or key)
                    self.finished.emit(JobResult(job.job_id, local_id, values, event["image"],
                                                 str(event.get("parameters") or ""), label,
                                                 int(event.get("steps_run") or 0), float(event.get("elapsed") or 0.0),
                                                 job.branch_from))
                    self._ready_unless_busy(f"Ready · {label} on {self.where}")
                elif kind == "cancelled":
                    step = int(event.get("step", run.last_step if run is not None else 0))
                    if run is not None:
                        self._keep_state(run)
                    self.failed.emit(JobFailure(job.job_id, f"Cancelled at step {step + 1}.", cancelled=True,
                                                step=step))
                    self._ready_unless_busy(f"Ready · on {self.where}")

    def _ready_unless_busy(self, text: str) -> None:
        """The status line says Ready when the job ending was the last one running here."""
        if len(self._jobs) <= 1:
            self.status.emit(text)

    def _new_run(self, server_id: str) -> tuple[int, RemoteRun]:
        local_id = next_run_id()  # the count this process's runners draw from: no id the timeline shows
        run = RemoteRun(server_id)
        self._runs[local_id] = run
        return local_id, run

    def _keep_state(self, run: RemoteRun) -> None:
        """Fetch the run's state after its last step, while the next job may already be streaming."""
        if run.last_step < 0:
            return

        async def fetch() -> bytes | None:
            try:
                blob = await self.server.state(run.server_id, run.last_step)
            except (ServerError, ServerUnreachable):
                return None  # a branch then asks the server for the run it may still hold
            self._forget_old_states()
            return blob

        run.state = asyncio.ensure_future(fetch())

    def _forget_old_states(self) -> None:
        held = [r for r in self._runs.values() if r.state is not None and r.state.done() and r.state.result()]
        total = sum(len(r.state.result()) for r in held)
        for run in held:  # oldest first
            if total <= KEPT_STATE_BYTES:
                break
            total -= len(run.state.result())
            run.state = None


def parallel_jobs(health: dict[str, Any]) -> int:
    """Jobs to keep running on a server at once, from its health: each replica one running and one waiting, but
    no more than the server lets one client queue (its ``queue_limit``, when it says)."""
    try:
        replicas = max(1, int(health.get("replicas") or 1))
        limit = health.get("queue_limit")
        limit = int(limit) if limit is not None else None
    except (TypeError, ValueError):
        return 1
    jobs = replicas * DEFAULT_PER_REPLICA
    return max(1, min(jobs, limit)) if limit is not None and limit > 0 else jobs
