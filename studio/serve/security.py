"""What a server refuses before doing any work: wrong tokens, oversized bodies and images, too many queued runs.

Pure Python (no Ray, no web framework): the limits are shared with wire.py's image decoding and the tests.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from dataclasses import dataclass
from pathlib import Path

MAX_BODY_BYTES = 64 * 2**20  # a request body, checked from Content-Length and again while it is read
MAX_IMAGE_BYTES = 32 * 2**20  # one PNG, before base64
MAX_IMAGE_SIDE = 4096  # pixels, from the PNG header before any pixel is decoded
MAX_QUEUED_RUNS = 4  # queued + running runs per client (its token, or its address without a token)
MAX_TOKEN_CHARS = 512


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


@dataclass(frozen=True)
class Client:
    """Who sent a request, for its queue: ``key`` names its token ("token 2", never the token itself) or, on a
    server without tokens, its address; ``limit`` is how many runs it may have queued or running."""

    key: str
    limit: int
    by_token: bool


class ClientTokens:
    """The tokens a server takes, each a client with its own queue limit (``(token, limit)``; limit 0: the
    server's ``default_limit``). Without tokens every request is let in, and counted by its address."""

    def __init__(self, tokens: tuple[tuple[str, int], ...] | list, default_limit: int = MAX_QUEUED_RUNS):
        self.tokens = tuple((str(token), int(limit)) for token, limit in tokens)
        self.default_limit = default_limit

    def identify(self, header: str | None, address: str) -> Client | None:
        """The client an Authorization header names; None when the server has tokens and it carries none of them.

        Every token is compared, each in time independent of where the strings differ: timing tells nothing."""
        if not self.tokens:
            return Client(address, self.default_limit, False)
        if not header or not header.startswith("Bearer "):
            return None
        sent = header[len("Bearer "):].strip().encode()
        found = None
        for index, (token, limit) in enumerate(self.tokens):
            if hmac.compare_digest(sent, token.encode()) and found is None:
                found = Client(f"token {index + 1}", limit or self.default_limit, True)
        return found


def read_tokens_file(path: Path) -> tuple[tuple[str, int], ...]:
    """``--tokens-file``: one client a line, ``TOKEN`` or ``TOKEN LIMIT`` (its own queue limit); ``#`` comments.
    ValueError naming the line for anything else."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the tokens file {path}: {exc}") from exc
    tokens: list[tuple[str, int]] = []
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{path}, line {number}"
        if len(words) > 2 or len(words[0]) > MAX_TOKEN_CHARS or not words[0].isprintable():
            raise ValueError(f"{where}: write a token, then optionally its queue limit (TOKEN [LIMIT])")
        limit = 0
        if len(words) == 2:
            if not words[1].isdigit() or int(words[1]) < 1:
                raise ValueError(f"{where}: the queue limit {words[1]!r} must be a whole number from 1")
            limit = int(words[1])
        if any(words[0] == token for token, _ in tokens):
            raise ValueError(f"{where}: this token is given twice")
        tokens.append((words[0], limit))
    if not tokens:
        raise ValueError(f"the tokens file {path} holds no token")
    return tuple(tokens)


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
    """How many runs each client has queued or running; a client over its limit (MAX_QUEUED_RUNS unless its token
    has its own) is refused (HTTP 429)."""

    def __init__(self, limit: int = MAX_QUEUED_RUNS):
        self.limit = limit
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, client: str, limit: int | None = None) -> bool:
        """Count one more run for ``client``; False (nothing counted) when it already has ``limit`` (default:
        the queues' own)."""
        with self._lock:
            if self._counts.get(client, 0) >= (limit if limit is not None else self.limit):
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
