"""The Ray Serve application: a light ingress (HTTP, auth, limits, run bookkeeping) in front of engine replicas.

``Gateway`` (one replica, no CPU of its own) checks every request before any work (security.py), turns the
JSON into a GenerationRequest (wire.py), and streams the run's events from an ``Engine`` replica as NDJSON.
``Engine`` replicas (one per GPU, or CPU replicas) each hold a Runner (replica.py) and run one request at a
time: Ray Serve queues the rest and hands each to the first free replica. Step states stream to the
ingress with the steps (run_store.py), so a branch runs exactly on any replica.

Imports Ray: the rest of the studio never imports this module unless asked to serve.
"""

# No "from __future__ import annotations": FastAPI reads the routes' annotations as types.
import asyncio
import base64
import binascii
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError, RayError
from ray.serve.exceptions import RayServeException, RequestCancelledError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine.request import RequestError
from .catalog import ServerCatalog, UnknownModel
from .options import ServerOptions
from .prompt_help import MAX_PROMPT_CHARS, PromptHelp
from .replica import STATE, EngineReplica
from .run_store import RunRecord, RunStore, StepUnavailable, UnknownRun
from .security import Client, ClientQueues, ClientTokens, TooLarge, check_body_size
from .upscales import upscale_from_json
from .wire import API_PREFIX, NDJSON, error_json, event_line, loads_body, request_from_json

RUN_HEADER = "X-Studio-Run"
RETRIES = 2  # a run that no replica started is tried again this many times
api = FastAPI(title="Diffusion Studio server", docs_url=None, redoc_url=None, openapi_url=None)


class ApiError(Exception):
    """An HTTP error with the API's body: {"error": what to fix, "field": the request field or null}."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@api.exception_handler(ApiError)
async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse(error_json(exc.message, exc.field), status_code=exc.status)


@api.exception_handler(RequestValidationError)
async def _invalid_parameter(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """A query or path parameter of the wrong type (?step=abc): 400 in the API's own error body."""
    problem = exc.errors()[0] if exc.errors() else {}
    field = str(problem.get("loc", ("", "request"))[-1])
    return JSONResponse(error_json(f"{field}: {problem.get('msg', 'is not valid')}", field), status_code=400)


@api.exception_handler(StarletteHTTPException)
async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown routes and methods, in the API's error body too."""
    return JSONResponse(error_json(f"{exc.detail} (the API is under {API_PREFIX})"), status_code=exc.status_code)


def loads_or_400(body: bytes) -> Any:
    """The body's JSON, or a 400 saying where it breaks. (Defined before Gateway: serve.ingress copies the
    routes, with the module names they use, when the class is made.)"""
    try:
        return loads_body(body)
    except RequestError as exc:
        raise ApiError(400, str(exc), None) from exc


@serve.deployment(max_ongoing_requests=1, ray_actor_options={"num_cpus": 1})
class Engine:
    """One engine replica (its options are set per server in ``build_app``)."""

    def __init__(self, options: dict[str, Any]):
        context = serve.get_replica_context()
        # Its Ray actor's name: what `ray.get_actor(name, namespace="serve")` finds (docs/serve.md).
        self.replica = EngineReplica(ServerOptions.from_dict(options), context.replica_id.to_full_id_str())

    async def describe(self, key: str) -> dict[str, Any]:
        return await self.replica.describe(key)

    async def run(self, run_id: str, request, branch: dict[str, Any] | None, latents: bool):
        async for item in self.replica.run(run_id, request, branch, latents):
            yield item

    async def upscale(self, upscale_id: str, order):
        async for item in self.replica.upscale(upscale_id, order):
            yield item


@serve.deployment(max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class Gateway:
    def __init__(self, engine: DeploymentHandle, options: dict[str, Any]):
        self.engine = engine
        self.options = ServerOptions.from_dict(options)
        self.catalog = ServerCatalog.scan(self.options.model_folders, self.options.default_model)
        self.runs = RunStore(self.options.keep_runs)
        self.queues = ClientQueues(self.options.queue_limit)
        self.clients = ClientTokens(self.options.tokens(), self.options.queue_limit)
        self.prompt_help = PromptHelp(self.options.model_folders)

    # ---- checks every route makes -----------------------------------------------------------------------------

    def _auth(self, request: Request) -> Client:
        """Who sent it (its token, or its address on a server without tokens); 401 for a wrong or missing token."""
        address = request.client.host if request.client is not None else "unknown"
        client = self.clients.identify(request.headers.get("authorization"), address)
        if client is None:
            raise ApiError(401, "wrong or missing token: send 'Authorization: Bearer <the server's token>'")
        return client

    async def _body(self, request: Request) -> bytes:
        """The body, refused (413) from its Content-Length or as soon as it grows past the limit."""
        try:
            length = request.headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    raise ApiError(400, "the Content-Length header is not a number")
                check_body_size(int(length))
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                check_body_size(size)
                chunks.append(chunk)
        except TooLarge as exc:
            raise ApiError(413, str(exc), exc.field) from exc
        return b"".join(chunks)

    # ---- routes ------------------------------------------------------------------------------------------------

    @api.get(API_PREFIX + "/health")
    async def health(self, request: Request) -> dict[str, Any]:
        client = self._auth(request)
        # Ray gives a replica that asks for a GPU one GPU (and hides them from the others).
        device = "cuda" if self.options.gpus_per_replica > 0 else "cpu"
        replicas = await asyncio.to_thread(self._replicas)  # asks the controller: not on the streams' event loop
        # queue_limit: the runs this client may have queued or running (fan-out keeps no more in flight)
        return {"version": __version__, "replicas": replicas, "device": device, "queue_limit": client.limit}

    @api.get(API_PREFIX + "/models")
    async def models(self, request: Request) -> dict[str, Any]:
        self._auth(request)
        return self.catalog.to_json()

    @api.get(API_PREFIX + "/models/{key:path}")
    async def describe_model(self, key: str, request: Request) -> dict[str, Any]:
        """One model as loaded on a replica: its size and advice, which the studio applies when it is picked and
        the command line uses for what no flag sets (GET /v1/models lists the keys)."""
        self._auth(request)
        try:
            key = self.catalog.resolve(key)
        except UnknownModel as exc:
            raise ApiError(404, str(exc), "model") from exc
        answer = await self.engine.describe.remote(key)
        if "error" in answer:
            raise ApiError(422, answer["error"], "model")
        return answer | {"label": self.catalog.label(key)}  # the name the list gives it

    @api.get(API_PREFIX + "/adapters")
    async def adapters(self, request: Request, model: str = "") -> dict[str, Any]:
        """The LoRA, embedding, ControlNet and upscaler names a run of ``model`` (default: the server's default
        model) may use: the server's own folders only, by name (no path on the server is sent)."""
        self._auth(request)
        key = self._model_key(model or self.catalog.default)
        return await asyncio.to_thread(self.prompt_help.adapters, key)

    @api.post(API_PREFIX + "/prompts/describe")
    async def describe_prompt(self, request: Request) -> dict[str, str]:
        """``{"model", "prompt"}`` -> ``{"description"}``: what the model makes of the prompt ("" when it cannot
        say), for the line under the studio's prompt box."""
        self._auth(request)
        body = loads_or_400(await self._body(request))
        if not isinstance(body, dict) or not isinstance(body.get("prompt", ""), str):
            raise ApiError(400, "the body must be {\"model\": key, \"prompt\": text}", "prompt")
        prompt = body.get("prompt", "")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ApiError(400, f"the prompt is longer than {MAX_PROMPT_CHARS} characters", "prompt")
        key = self._model_key(body.get("model") or self.catalog.default)
        try:
            text = await asyncio.to_thread(self.prompt_help.describe, key, prompt)
        except Exception as exc:  # noqa: BLE001 - a model that cannot load describes nothing; the run says why
            print(f"describing a prompt with {key} failed: {type(exc).__name__}: {exc}")
            text = ""
        return {"description": text}

    def _model_key(self, model: Any) -> str:
        try:
            return self.catalog.resolve(model)
        except UnknownModel as exc:
            raise ApiError(404, str(exc), "model") from exc

    @api.post(API_PREFIX + "/runs")
    async def start_run(self, request: Request) -> StreamingResponse:
        client = self._auth(request)
        gen_request, branch, latents = self._payload(loads_or_400(await self._body(request)))
        return self._stream(client, "run", lambda run: (run, gen_request, branch, latents), branchable=True)

    @api.post(API_PREFIX + "/upscales")
    async def start_upscale(self, request: Request) -> StreamingResponse:
        """An upscale of one image on a replica (studio/serve/upscales.py): queued, limited and cancelled as a
        run is (``POST /v1/runs/{id}/cancel`` stops it after its current tile)."""
        client = self._auth(request)
        try:
            order = upscale_from_json(loads_or_400(await self._body(request)))
        except TooLarge as exc:
            raise ApiError(413, str(exc), exc.field) from exc
        except RequestError as exc:
            raise ApiError(400, str(exc), exc.field) from exc
        return self._stream(client, "upscale", lambda upscale: (upscale, order), branchable=False)

    def _stream(self, client: Client, method: str, arguments, branchable: bool) -> StreamingResponse:
        """A job (``method`` of the engine replicas, called with ``arguments(its id)``) queued for ``client`` and
        its events streamed back; 429 when the client is over its queue limit."""
        if not self.queues.enter(client.key, client.limit):
            who = "this token" if client.by_token else "this client"
            raise ApiError(429, f"{who} already has {client.limit} runs queued or running here (its limit); wait "
                                "for one to finish")
        record = RunRecord(uuid.uuid4().hex, client.key, branchable=branchable)
        self.runs.add(record)
        call = (method, arguments(record.run))
        record.stream = self._call(call)
        # The run id in a header too: a queued run's client can cancel it before its "started" line comes.
        return StreamingResponse(self._events(record, call), media_type=NDJSON, headers={RUN_HEADER: record.run})

    def _call(self, call: tuple[str, tuple]):
        method, arguments = call
        return getattr(self.engine.options(stream=True), method).remote(*arguments)

    @api.post(API_PREFIX + "/runs/{run}/cancel")
    async def cancel_run(self, run: str, request: Request) -> dict[str, bool]:
        self._auth(request)
        try:
            record = self.runs.get(run)
        except UnknownRun as exc:
            raise ApiError(404, str(exc)) from exc
        if record.finished or record.stream is None:
            return {"cancelled": False}
        record.cancelled = True
        record.stream.cancel()  # reaches the replica running it: its run stops before the next step
        return {"cancelled": True}

    @api.get(API_PREFIX + "/runs/{run}/state")
    async def run_state(self, run: str, request: Request, step: int) -> Response:
        self._auth(request)
        try:
            blob = self.runs.state(run, step)
        except UnknownRun as exc:
            raise ApiError(404, str(exc)) from exc
        except StepUnavailable as exc:
            raise ApiError(409, str(exc), "step") from exc
        return Response(blob, media_type="application/octet-stream")

    # ---- a run --------------------------------------------------------------------------------------------------

    def _payload(self, body: Any) -> tuple[Any, dict[str, Any] | None, bool]:
        """(GenerationRequest with a catalog model key, branch for the replica, latents) or ApiError."""
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object: {\"request\": {...}, \"images\": {...}}")
        unknown = sorted(set(body) - {"request", "images", "branch", "latents"})
        if unknown:
            raise ApiError(400, f"{unknown[0]!r} is not part of a run's body", unknown[0])
        try:
            gen_request = request_from_json(body.get("request", {}), body.get("images"))
        except TooLarge as exc:
            raise ApiError(413, str(exc), exc.field) from exc
        except RequestError as exc:
            raise ApiError(400, str(exc), exc.field) from exc
        try:
            gen_request = gen_request.with_changes(model=self.catalog.resolve(gen_request.model))
        except UnknownModel as exc:
            raise ApiError(404, str(exc), "model") from exc
        if gen_request.refiner.strip():  # an SDXL refiner is a model too: one of the list, never a path
            try:
                self.catalog.resolve(gen_request.refiner.strip())
            except UnknownModel as exc:
                raise ApiError(404, str(exc), "refiner") from exc
        latents = body.get("latents", False)
        if not isinstance(latents, bool):
            raise ApiError(400, "latents must be true or false", "latents")
        return gen_request, self._branch(body.get("branch")), latents

    def _branch(self, branch: Any) -> dict[str, Any] | None:
        """The branch for the replica, always with a state: the client's, else the one this server holds."""
        if branch is None:
            return None
        if not isinstance(branch, dict) or not isinstance(branch.get("run"), str):
            raise ApiError(400, "branch must be {\"run\": run id, \"step\": k, \"state\": base64 (optional)}", "branch")
        step = branch.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ApiError(400, "branch.step must be a whole number from 0", "branch")
        state = branch.get("state")
        if state is not None:
            if not isinstance(state, str):
                raise ApiError(400, "branch.state must be base64 text", "branch")
            try:
                blob = base64.b64decode(state, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiError(400, f"branch.state is not valid base64 ({exc})", "branch") from exc
        else:
            try:
                blob = self.runs.state(branch["run"], step)
            except (UnknownRun, StepUnavailable) as exc:
                raise ApiError(409, f"{exc}; send the run's state (GET {API_PREFIX}/runs/RUN/state?step=K) with "
                                    "the branch", "branch") from exc
        return {"run": branch["run"], "step": step, "state": blob}

    async def _events(self, record: RunRecord, call: tuple):
        """The run's NDJSON lines; the step states are kept here, not sent on. A replica that dies before the
        run started on it (a killed replica Ray Serve has not dropped yet) is tried again on another."""
        try:
            async for item in self._started(record, call):
                kind = item.get("type")
                state = item.pop(STATE, None)
                if state is not None:  # before the client sees the step, the server can branch from it
                    self.runs.add_states(record, state)
                if kind == "started":
                    record.replica = item.get("replica", "")
                elif kind == "step":
                    record.last_step = item["index"]
                elif kind in ("result", "error", "cancelled"):
                    record.finished = True
                yield event_line(item)
        except RequestCancelledError:
            if record.cancelled:
                yield event_line({"type": "cancelled", "run": record.run, "step": record.last_step + 1})
            else:  # not asked for by anyone: Ray Serve gave up on it
                yield event_line({"type": "error", "run": record.run, "field": None,
                                  "error": "the server cancelled this run (it is shutting down?); run it again"})
        except (RayError, RayServeException) as exc:  # the replica died, or none could take the run
            yield event_line({"type": "error", "run": record.run, "field": None,
                              "error": f"the replica running this run stopped ({type(exc).__name__}); run it again: "
                                       "another replica takes it"})
        finally:
            if not record.finished and record.stream is not None:
                record.stream.cancel()  # the client went away: stop the run before its next step
            self.queues.leave(record.client)
            self.runs.finish(record)

    async def _started(self, record: RunRecord, call: tuple, tries: int = RETRIES):
        """The replica's items; the call made again (up to ``tries`` times) when it fails before its first item."""
        for attempt in range(tries + 1):
            first = True
            try:
                async for item in record.stream:
                    first = False
                    yield item
                return
            except (RayActorError, ActorUnavailableError):
                if not first or attempt == tries or record.cancelled:
                    raise
                record.stream = self._call(call)

    # ---- health -------------------------------------------------------------------------------------------------

    def _replicas(self) -> int:
        try:
            app = serve.status().applications[self.options.app_name]
            engine = app.deployments["Engine"]
            return int(engine.replica_states.get("RUNNING", 0))
        except Exception:  # noqa: BLE001 - the controller may be busy: the configured count is close enough
            return self.options.fixed_replicas()


def build_app(options: ServerOptions):
    """The application for ``serve.run``: engine replicas sized by ``options``, behind the ingress."""
    actor = {"num_cpus": options.cpus_per_replica, "num_gpus": options.gpus_per_replica}
    autoscaling = options.autoscaling()
    scale = {"autoscaling_config": autoscaling} if autoscaling else {"num_replicas": options.fixed_replicas()}
    engine = Engine.options(ray_actor_options=actor, **scale).bind(options.to_dict())
    return Gateway.bind(engine, options.to_dict())

