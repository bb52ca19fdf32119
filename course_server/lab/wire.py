"""Count the bytes on the wire: a tiny TCP proxy between a client and the server.

A client pointed at the proxy's port instead of the server's goes through unchanged, and the proxy
counts every byte each way: request lines, headers, chunk sizes, WebSocket frame headers, close
frames, everything the protocols add on top of the data. That is the cost lesson 01 compares,
measured the same way for polling, WebSockets and Server-Sent Events.

It listens on 127.0.0.1 only, on a free port. Memory stays bounded however fast either side is:
each direction copies one chunk at a time and waits for the other side to take it (``drain``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from types import TracebackType
from typing import Self

CHUNK = 64 * 1024


@dataclasses.dataclass
class WireStats:
    """What went through the proxy: bytes client→server (up), server→client (down), connections."""

    bytes_up: int = 0
    bytes_down: int = 0
    connections: int = 0

    @property
    def total(self) -> int:
        return self.bytes_up + self.bytes_down


class CountingProxy:
    """Forward TCP connections to ``target_host:target_port`` and count their bytes.

    ``async with CountingProxy(host, port) as proxy:`` then connect to ``proxy.port``. Leaving the
    block stops listening and waits up to ``close_timeout`` seconds for open connections to
    finish, then cuts them, so ``proxy.stats`` is final afterwards. Connections beyond
    ``max_connections`` at a time are refused (closed at once, nothing counted).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        max_connections: int = 100,
        close_timeout: float = 2.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.max_connections = max_connections
        self.close_timeout = close_timeout
        self.stats = WireStats()
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def url(self, scheme: str = "http", path: str = "") -> str:
        """This proxy's address as a URL, e.g. ``proxy.url("ws", "/feed/ws")``."""
        return f"{scheme}://{self.host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening; let open connections end on their own for a while, then cut them."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=self.close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(reader, writer)
        finally:
            self._connections.discard(task)

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_writer.close()
            return
        self.stats.connections += 1
        try:
            await asyncio.gather(
                self._pipe(client_reader, server_writer, "bytes_up"),
                self._pipe(server_reader, client_writer, "bytes_down"),
            )
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: str
    ) -> None:
        """Copy one direction until end of stream, then pass the half-close on."""
        try:
            while chunk := await reader.read(CHUNK):
                setattr(self.stats, counter, getattr(self.stats, counter) + len(chunk))
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            # One side vanished: end the other direction too, or it would wait forever.
            writer.close()
