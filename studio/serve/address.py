"""A studio server's address as people type it, made one the client can use (no aiohttp: the Settings dialog
checks it too)."""

from __future__ import annotations

from urllib.parse import urlsplit

API = "/v1"
DEFAULT_PORT = 8188  # python -m studio serve's


def server_url(text: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash or ``/v1`` (a bare host name gets the server's
    default port); ValueError saying what is wrong."""
    text = (text or "").strip()
    bare = "://" not in text
    if bare:
        text = "http://" + text  # "gpu-box:8188" is what people type
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"server address {text!r}: give http://HOST:PORT (https:// behind a TLS proxy)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is no number or out of range
    except ValueError as exc:
        raise ValueError(f"server address {text!r}: {exc}") from None
    netloc = parts.netloc
    if bare and parts.port is None:
        netloc += f":{DEFAULT_PORT}"  # a bare host name means the studio's own server, on its port
    path = parts.path.rstrip("/")
    if path.endswith(API):
        path = path[: -len(API)]
    return f"{parts.scheme}://{netloc}{path}"
