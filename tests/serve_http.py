"""Plain-HTTP helpers for the serve tests (urllib: what any client sends, no studio client library)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from serve_cluster import TOKEN


def call(url: str, path: str, body: Any = None, token: str | None = TOKEN, raw: bytes | None = None,
         method: str | None = None, timeout: float = 60) -> tuple[int, bytes]:
    """(status, body bytes) of one request; errors are returned, not raised."""
    data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def error_of(status_body: tuple[int, bytes]) -> tuple[int, str, str | None]:
    status, body = status_body
    data = json.loads(body)
    return status, data["error"], data["field"]


def open_run(url: str, payload: dict[str, Any], token: str | None = TOKEN, timeout: float = 60):
    """A streaming POST /v1/runs: the open response, to read NDJSON lines from as they come."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + "/v1/runs", data=json.dumps(payload).encode(), headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def run_events(url: str, payload: dict[str, Any], token: str | None = TOKEN) -> list[dict[str, Any]]:
    """Every event of a run, decoded from its NDJSON lines."""
    with open_run(url, payload, token) as reply:
        assert reply.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in reply]
