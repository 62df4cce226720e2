"""What a server refuses before doing any work: wrong tokens, oversized bodies and images, too many queued runs.

Pure Python (no Ray, no web framework): the limits are shared with wire.py's image decoding and the tests.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading

MAX_BODY_BYTES = 64 * 2**20  # a request body, checked from Content-Length and again while it is read
MAX_IMAGE_BYTES = 32 * 2**20  # one PNG, before base64
MAX_IMAGE_SIDE = 4096  # pixels, from the PNG header before any pixel is decoded
MAX_QUEUED_RUNS = 4  # queued + running runs per client (its token, or its address without a token)


class TooLarge(ValueError):
    """A body or an image over its limit (HTTP 413); ``field`` names the image when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def token_matches(expected: str | None, header: str | None) -> bool:
    """Whether an Authorization header carries the server's token (always, when the server has none).

    The comparison takes the same time wherever the strings differ, so timing tells an attacker nothing."""
    if not expected:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), expected.encode())


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (ValueError saying what to pass)."""
    if not is_loopback(host) and not token:
        raise ValueError(f"listening on {host} lets other machines run models here: pass --token SECRET (clients "
                         "send it as 'Authorization: Bearer SECRET'), or listen on 127.0.0.1")


def check_body_size(length: int) -> None:
    if length > MAX_BODY_BYTES:
        raise TooLarge(f"the request body is {length / 2**20:.1f} MiB, more than the {MAX_BODY_BYTES // 2**20} MiB "
                       "this server takes; send smaller images")


class ClientQueues:
    """How many runs each client has queued or running; a client over MAX_QUEUED_RUNS is refused (HTTP 429)."""

    def __init__(self, limit: int = MAX_QUEUED_RUNS):
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, client: str) -> bool:
        """Count one more run for ``client``; False (nothing counted) when it already has ``limit``."""
        with self._lock:
            if self._counts.get(client, 0) >= self.limit:
                return False
            self._counts[client] = self._counts.get(client, 0) + 1
            return True

    def leave(self, client: str) -> None:
        with self._lock:
            left = self._counts.get(client, 0) - 1
            if left > 0:
                self._counts[client] = left
            else:
                self._counts.pop(client, None)

    def count(self, client: str) -> int:
        return self._counts.get(client, 0)
