"""Fan-out: many runs (a batch, a seed sweep, the cells of an X/Y/Z plot) spread over a server's replicas.

Each payload is one ``POST /v1/runs`` body. At most ``replicas x per_replica`` of them are in flight at once:
two per replica keeps each one busy (its next run already waits while the current one finishes) without
piling the whole batch into Ray's queue, where a cancel would have to chase it. Outcomes come back in the
order of the payloads; a run that fails is reported in its place and the others go on. ``cancel()`` stops
them all: nothing new starts and every started run is cancelled on the server.

Pure asyncio over the client library (``StudioServer``); no Qt, no torch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .client import ServerError, ServerUnreachable

DEFAULT_PER_REPLICA = 2
TOO_MANY_RUNS = 429  # the server's per-client queue limit: wait for one of ours to finish, then post again
NO_REPLICA = 503
FAILED_ON_SERVER = 500  # an error event naming no request field: e.g. the replica running it stopped
BUSY_RETRY_S = 0.25  # how long the last poster waits before posting again after a 429


class RunServer(Protocol):
    """What fan-out needs of ``studio.serve.client.StudioServer``."""

    async def health(self) -> dict: ...

    def run(self, payload: dict) -> AsyncIterator[dict]: ...

    async def cancel(self, run: str) -> Any: ...


@dataclass(frozen=True)
class RunOutcome:
    """How one payload ended: its result, or why it has none."""

    index: int  # the payload's place in the input
    result: dict | None = None  # the server's "result" event (its image decoded to uint8 [H, W, 3])
    error: str | None = None  # what went wrong, in words a user can act on
    field: str | None = None  # the request field the error is about, when the server named one
    cancelled: bool = False
    replica: str = ""  # which replica ran it (from the "started" event)

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def image(self) -> np.ndarray | None:
        return None if self.result is None else self.result["image"]


EventHandler = Callable[[int, dict], None]  # (payload index, event) for every event a run streams


class _Busy(Exception):
    """The server's per-client limit (429): post this payload again once a run of ours ends."""


class FanOut:
    """Runs many payloads over one server; ``await fan.run(payloads)`` once per instance."""

    def __init__(self, server: RunServer, per_replica: int = DEFAULT_PER_REPLICA, retries: int = 1,
                 max_in_flight: int | None = None):
        if per_replica < 1:
            raise ValueError(f"per_replica must be at least 1, not {per_replica}")
        self.server = server
        self.per_replica = per_replica
        self.retries = retries  # extra tries for a run lost to a dropped connection or a replica gone
        self.max_in_flight = max_in_flight  # a cap below replicas x per_replica (the benchmark's 1-at-a-time)
        self.in_flight_limit = 0  # set by run(): how many it allowed at once
        self.peak_in_flight = 0  # the most that were posted (queued or running on the server) at one moment
        self.busy_answers = 0  # 429s: posts the server's per-client limit turned away (and were posted again)
        self._cancelled = False
        self._running: dict[int, str] = {}  # payload index -> run id, for runs the server has started
        self._in_flight = 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop everything: payloads not yet posted never are, started runs are cancelled on the server."""
        if self._cancelled:
            return
        self._cancelled = True
        for run in list(self._running.values()):
            asyncio.ensure_future(self._cancel_quietly(run))

    async def run(self, payloads: Sequence[dict], on_event: EventHandler | None = None) -> list[RunOutcome]:
        """One outcome per payload, in their order."""
        outcomes: list[RunOutcome | None] = [None] * len(payloads)
        if not payloads:
            return []
        replicas = max(1, int((await self.server.health()).get("replicas", 1)))
        limit = min(replicas * self.per_replica, len(payloads))
        if self.max_in_flight is not None:
            limit = max(1, min(limit, self.max_in_flight))
        self.in_flight_limit = limit
        waiting: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(payloads)):
            waiting.put_nowait(index)
        workers = [asyncio.ensure_future(self._worker(payloads, waiting, outcomes, on_event))
                   for _ in range(limit)]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # Ctrl+C in the command line, a closed window: nothing keeps running on the server
            self.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*(self._cancel_quietly(run) for run in self._running.values()))
            raise
        return [outcome if outcome is not None else RunOutcome(index, cancelled=True)
                for index, outcome in enumerate(outcomes)]

    async def _worker(self, payloads: Sequence[dict], waiting: asyncio.Queue[int],
                      outcomes: list[RunOutcome | None], on_event: EventHandler | None) -> None:
        while not self._cancelled and not waiting.empty():
            index = waiting.get_nowait()
            try:
                outcomes[index] = await self._run_one(index, payloads[index], on_event)
            except _Busy:
                self.busy_answers += 1
                waiting.put_nowait(index)  # another worker (or this one, later) posts it again
                if self._in_flight > 0:
                    return  # the server holds as many of ours as it takes: one worker fewer from now on
                await asyncio.sleep(BUSY_RETRY_S)

    async def _run_one(self, index: int, payload: dict, on_event: EventHandler | None) -> RunOutcome:
        tries = 0
        while True:
            try:
                return await self._stream(index, payload, on_event)
            except ServerUnreachable as exc:  # the connection dropped, or the replica running it went away
                failure = RunOutcome(index, error=str(exc))
            except ServerError as exc:
                if exc.status == TOO_MANY_RUNS:
                    raise _Busy() from exc
                failure = RunOutcome(index, error=str(exc), field=exc.field)
                if not worth_retrying(exc):
                    return failure
            except ValueError as exc:  # an event that is not one (wire.event_from_json's RequestError)
                return RunOutcome(index, error=f"the server sent a broken event: {exc}")
            tries += 1
            if tries > self.retries or self._cancelled:
                return failure

    async def _stream(self, index: int, payload: dict, on_event: EventHandler | None) -> RunOutcome:
        """One run from post to its last event. The client raises ServerError for an error event and
        ServerUnreachable for a stream that ends early."""
        replica = ""
        self._in_flight += 1  # posted: queued on the server or running
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            async with aclosing(self.server.run(payload)) as events:  # leaving early closes the stream
                async for event in events:
                    kind = event.get("type")
                    if kind == "started":
                        replica = str(event.get("replica", ""))
                        self._running[index] = event["run"]
                        if self._cancelled:  # cancel() came while this one was being posted
                            await self._cancel_quietly(event["run"])
                    if on_event is not None:
                        on_event(index, event)
                    if kind == "result":
                        return RunOutcome(index, result=event, replica=replica)
                    if kind == "cancelled":
                        return RunOutcome(index, cancelled=True, replica=replica)
            if self._cancelled:
                return RunOutcome(index, cancelled=True, replica=replica)
            raise ServerUnreachable(str(getattr(self.server, "url", "the server")),
                                    "the run's stream ended before its result")
        finally:
            self._running.pop(index, None)
            self._in_flight -= 1

    async def _cancel_quietly(self, run: str) -> None:
        try:
            await self.server.cancel(run)
        except (ServerError, ServerUnreachable):
            pass  # the run ended meanwhile, or the server is gone: either way it no longer runs


def worth_retrying(exc: ServerError) -> bool:
    """A run lost to the server's side (no replica, a replica that died under it) may succeed on another; a request
    the server refused (a bad field, an unknown model, a token) would be refused again."""
    return exc.status == NO_REPLICA or (exc.status == FAILED_ON_SERVER and exc.field is None)


async def fan_out(server: RunServer, payloads: Sequence[dict], on_event: EventHandler | None = None,
                  per_replica: int = DEFAULT_PER_REPLICA) -> list[RunOutcome]:
    """Run every payload over the server's replicas; one outcome per payload, in their order."""
    return await FanOut(server, per_replica).run(payloads, on_event)
