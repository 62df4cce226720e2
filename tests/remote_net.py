"""Network stand-ins for the remote tests, each on its own thread and asyncio loop (the test's thread stays free
for Qt or for the client's own loop):

- ``ThreadServer``: an aiohttp web app on a free loopback port, for answers a real server never gives
  (HTML from a proxy, a stream cut in the middle);
- ``Relay``: a TCP relay in front of a server that a test can cut (every connection dropped, new ones refused)
  and restore, as a network or a server restart would.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from urllib.parse import urlsplit


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro, timeout: float = 10.0):
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer(_LoopThread):
    """``make_app()`` (an aiohttp.web.Application, built on the server's loop) served at ``self.url``."""

    def __init__(self, make_app: Callable) -> None:
        super().__init__()
        from aiohttp import web

        self.port = free_port()

        async def start():
            self._runner = web.AppRunner(make_app())
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        self.call(start())
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.call(self._runner.cleanup())
        self.stop()


class Relay(_LoopThread):
    """Bytes both ways between ``self.url`` and ``target_url``, until ``cut()``."""

    def __init__(self, target_url: str) -> None:
        super().__init__()
        target = urlsplit(target_url)
        self._target = (target.hostname, target.port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._writers: set[asyncio.StreamWriter] = set()
        self._server = None
        self.restore()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def cut(self) -> None:
        """Drop every connection and refuse new ones (a reset, as from a server that went away)."""
        async def cut():
            self._server.close()
            for writer in list(self._writers):
                sock = writer.get_extra_info("socket")
                if sock is not None:  # RST rather than FIN: the client sees a broken connection at once
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                writer.transport.abort()
            self._writers.clear()
            await self._server.wait_closed()

        self.call(cut())

    def restore(self) -> None:
        async def listen():
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

        self.call(listen())

    def close(self) -> None:
        self.cut()
        self.stop()
