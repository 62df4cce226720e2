"""A client of the studio server (``python -m studio serve``): asyncio over aiohttp; no Qt, no torch.

The command line (``generate --server``), the window's remote engine (studio/worker/remote_session.py) and the
fan-out over replicas all talk to a server through StudioServer. Whatever goes wrong comes out as one of two
exceptions whose message says what to fix: ServerError (the server answered, with an error) or
ServerUnreachable (no answer, or the connection dropped before the run ended).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from ..engine.request import GenerationRequest
from . import INSTALL_CLIENT, wire
from .address import API, server_url
from .upscales import DEFAULT_TILE, upscale_payload

try:  # the [client] extra: the desktop app and the command line start without it
    import aiohttp
except ImportError:  # pragma: no cover - exercised only where aiohttp is missing
    aiohttp = None

CONNECT_TIMEOUT_S = 10.0
ANSWER_TIMEOUT_S = 60.0  # a plain request (health, models, cancel, state); a run's stream may wait longer in a queue
MAX_LINE_BYTES = 512 * 2**20  # one event of the stream; a 4096² result is a few tens of MiB of base64
ENDINGS = ("result", "cancelled", "error")  # the event types that end a run's stream
MODEL_ADVICE = "pick one of the server's models (python -m studio models --server URL lists them)"
# What to do about each refusal, added to the server's own words.
ADVICE = {
    401: "give the token the server was started with (--token, or Settings → Engine)",
    409: "that step is no longer held by the server: branch from a run made in this session",
    413: "send smaller images",
    429: "too many runs of yours are queued on the server: wait for some to finish",
    503: "the server has no engine replica running: start one, or try again shortly",
}


class ServerError(Exception):
    """The server refused or failed a request: HTTP ``status``, its ``message``, the request ``field`` at fault."""

    def __init__(self, status: int, message: str, field: str | None = None):
        self.status, self.message, self.field = status, message, field
        advice = MODEL_ADVICE if status == 404 and field == "model" else ADVICE.get(status)
        text = message.rstrip(". ") if message else f"HTTP {status}"
        super().__init__(f"{text} — {advice}" if advice and advice not in text else text)


class ServerUnreachable(ConnectionError):
    """No answer from ``url`` (refused, timed out, not a studio server) or the connection dropped mid-run."""

    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"cannot reach the studio server at {url} ({reason}); check the address and that "
                         "`python -m studio serve` runs there")


@dataclass(frozen=True)
class Branch:
    """Where a run continues from: the server's run id, the step, and that run's state blob when the client has it
    (then any replica branches exactly; without it only a replica that still holds the run can)."""

    run: str
    step: int
    state: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        state = base64.b64encode(self.state).decode("ascii") if self.state else None
        return {"run": self.run, "step": self.step, "state": state}


def run_payload(request: GenerationRequest, branch: Branch | None = None, latents: bool = False) -> dict[str, Any]:
    """The body of ``POST /v1/runs`` for a request: its fields, its images as PNG, the branch point."""
    return wire.run_payload(request, branch.to_json() if branch is not None else None, latents)


class StudioServer:
    """One studio server. Use it inside one asyncio loop (``async with StudioServer(url, token) as server``), or
    call ``close()`` when done. A run is an async iterator of its events; leaving it early cancels the run."""

    def __init__(self, url: str, token: str | None = None, *, connect_timeout: float = CONNECT_TIMEOUT_S,
                 answer_timeout: float = ANSWER_TIMEOUT_S):
        if aiohttp is None:
            raise ValueError(f"connecting to a studio server needs aiohttp: {INSTALL_CLIENT}")
        self.url = server_url(url)
        self.token = token or None
        self._connect_timeout = connect_timeout
        self._answer_timeout = answer_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> StudioServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_open(self) -> bool:
        """Whether a connection pool is open (``close()`` has something to close)."""
        return self._session is not None and not self._session.closed

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            # No overall limit: a run streams for as long as it takes; each plain call sets its own.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
            self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)
        return self._session

    # -- plain calls ---------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """``{"version", "replicas", "device"}``."""
        return await self._json("GET", "/health")

    async def models(self) -> dict[str, Any]:
        """``{"models": [{"key", "label", "family", ...}], "default", "samplers", "spacings"}``."""
        return await self._json("GET", "/models")

    async def model(self, key: str) -> dict[str, Any]:
        """One model as the engine describes it once loaded: a ModelChoice's fields (``default_size``,
        ``recommended``, ...); loads it on a replica when none has it."""
        return await self._json("GET", f"/models/{quote(key, safe='')}")

    async def adapters(self, model: str = "") -> dict[str, list[str]]:
        """The adapter names a run of ``model`` may use, by kind: ``{"lora", "embedding", "controlnet",
        "upscaler"}`` (the server's folders only)."""
        return await self._json("GET", "/adapters", params={"model": model} if model else None)

    async def describe(self, model: str, prompt: str) -> str:
        """What ``model`` makes of ``prompt`` ("" when it cannot say): the line under the studio's prompt box."""
        answer = await self._json("POST", "/prompts/describe", body={"model": model, "prompt": prompt})
        return str(answer.get("description") or "")

    async def cancel(self, run: str) -> bool:
        """Stop ``run`` before its next step; whether it was still running."""
        answer = await self._json("POST", f"/runs/{quote(run, safe='')}/cancel")
        return bool(answer.get("cancelled"))

    async def state(self, run: str, step: int) -> bytes:
        """The safetensors blob that lets a branch from ``step`` of ``run`` be exact on any replica."""
        return await self._call("GET", f"/runs/{quote(run, safe='')}/state", params={"step": str(int(step))},
                                read=lambda response: response.read())

    async def _json(self, method: str, path: str, params: dict | None = None,
                    body: dict | None = None) -> dict[str, Any]:
        async def read(response) -> dict[str, Any]:
            try:
                answer = json.loads(await response.read())
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise ServerError(response.status, f"{self.url} answered {path} with something other than a "
                                                   "studio server's JSON: is it the right address?")
            return answer

        return await self._call(method, path, read=read, params=params, body=body)

    async def _call(self, method: str, path: str, read, params: dict | None = None, body: dict | None = None):
        try:
            async with self._client().request(method, self.url + API + path, params=params, json=body,
                                              timeout=aiohttp.ClientTimeout(total=self._answer_timeout,
                                                                            sock_connect=self._connect_timeout)
                                              ) as response:
                if response.status >= 300:
                    raise await _refusal(response)
                return await read(response)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise ServerUnreachable(self.url, _reason(exc)) from None

    # -- runs ----------------------------------------------------------------------------------------
    def run(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Submit a run (``run_payload``) and yield its events as they come: ``started``, one ``step`` per step
        (``preview`` a uint8 array), then ``result`` (``image`` a uint8 array) or ``cancelled``.

        An ``error`` event raises ServerError (status 400 when it names a request field, else 500); a stream
        that ends before the run did raises ServerUnreachable. Closing the iterator early (``aclosing``, or
        breaking out of ``async for`` in one) closes the stream, which cancels the run on the server."""
        return self._stream("/runs", payload)

    def upscale(self, image: np.ndarray, upscaler: str, scale: float,
                tile: int = DEFAULT_TILE) -> AsyncIterator[dict[str, Any]]:
        """Upscale ``image`` (uint8 [H, W, 3]) on the server with ``lanczos`` or one of its upscaler files (by
        name): ``started``, a ``progress`` event per tile (``done``, ``total``), then ``result`` (``image`` a uint8
        array, ``label``, ``elapsed``) or ``cancelled``. Errors and closing early as for ``run``."""
        return self._stream("/upscales", upscale_payload(image, upscaler, scale, tile))

    async def _stream(self, path: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        body = json.dumps(payload).encode()
        try:
            async with self._client().post(self.url + API + path, data=body,
                                           headers={"Content-Type": "application/json"}) as response:
                if response.status >= 300:
                    raise await _refusal(response)
                async for line in _lines(response.content):
                    event = _event(line, self.url)
                    if event.get("type") == "error":
                        field = event.get("field")
                        raise ServerError(400 if field else 500, str(event.get("error") or "the run failed"), field)
                    yield event
                    if event.get("type") in ENDINGS:
                        return
                raise ServerUnreachable(self.url, "the connection closed before the run ended")
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise ServerUnreachable(self.url, _reason(exc)) from None


async def _lines(stream) -> AsyncIterator[bytes]:
    """The stream's lines (NDJSON), however its chunks fall; aiohttp's own readline stops at 128 KiB."""
    pending = bytearray()
    async for chunk in stream.iter_any():
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            if end > start:
                yield bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        if len(pending) > MAX_LINE_BYTES:
            raise ServerError(502, f"an event of more than {MAX_LINE_BYTES >> 20} MiB came from the server")
    if pending.strip():
        yield bytes(pending)


def _event(line: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ServerError(502, f"{url} sent something other than a studio server's run events")
    try:
        return wire.event_from_json(data)
    except ValueError as exc:  # RequestError: a preview that is no PNG, an event without a type
        raise ServerError(502, f"{url} sent an event that cannot be read ({exc})") from None


async def _refusal(response) -> ServerError:
    """The server's ``{"error", "field"}`` as a ServerError (or the HTTP reason, from something else)."""
    try:
        data = json.loads(await response.read())
    except (ValueError, aiohttp.ClientError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        field = data.get("field")
        return ServerError(response.status, data["error"], field if isinstance(field, str) else None)
    return ServerError(response.status, f"HTTP {response.status} {response.reason or ''}".strip())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    if aiohttp is not None and isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if aiohttp is not None and isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection refused or no such host: {exc.os_error}" if exc.os_error else "connection refused"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
