"""Clients that misbehave on purpose, and the tools to watch a server cope (or not).

- ``stalled_reader(url)``: completes the handshake, then never reads. Its receive buffer is tiny,
  so whatever the server sends backs up into the server's own buffers within a few hundred KB.
  A ``websockets`` client cannot play this part: it keeps reading into its own buffer in the
  background, so the server never notices it is not being read.
- ``RawClient.vanish()``: a client gone without a close frame (a crashed tab, a dropped
  network): the TCP connection is reset (``SO_LINGER`` 0), so the server learns it only from
  its next read or write.
- ``server_busy(server)``: hold the server's event loop for a moment, as a long synchronous call
  would. Network events that arrive meanwhile are handled together, in arrival order, once the
  loop is free again: that is how a race the server usually wins becomes certain to lose.
- ``slow_headers(port, head)``: a slowloris client, which sends its request's headers one line
  at a time and never finishes them.
- ``server_errors()``: collect what the server logs at WARNING and above instead of printing it.

Both clients are raw sockets, with ``websockets``' sans-I/O ``ClientProtocol`` doing the
handshake and the framing, so the socket does exactly what we tell it and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import struct
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Self

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from course_server.lab.waiting import eventually
from course_server.realtime.closecodes import CloseCode
from course_server.runner import RunningServer

"""What a client reports when the connection ended without a close frame."""

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


async def slow_headers(port: int, head: bytes, interval: float, give_up: float) -> float | None:
    """Seconds until the server hung up on a client dribbling headers; None if it never did.

    The slowloris attack: send ``head`` (a request line and maybe some headers), then one more
    header line every ``interval`` seconds, never the blank line that ends them, for at most
    ``give_up`` seconds. A server without a header timeout holds such a connection forever.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        n = 0
        while time.monotonic() - started < give_up:
            try:
                if await asyncio.wait_for(reader.read(65536), interval) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                n += 1
                writer.write(f"X-Slow-{n}: {n}\r\n".encode())  # one more header, never the end
            except ConnectionError:
                return time.monotonic() - started
        return None
    finally:
        writer.close()


@dataclasses.dataclass
class Resumed:
    """What a stalled reader found once it read again: the messages, then how it ended."""

    messages: int
    close_code: int | None  # None: still open when we stopped reading
    close_reason: str = ""

    def __str__(self) -> str:
        ending = "still open" if self.close_code is None else f"closed {self.close_code}"
        reason = f" {self.close_reason!r}" if self.close_reason else ""
        return f"{self.messages} messages, then {ending}{reason}"


class RawClient:
    """A WebSocket client on a plain socket: it reads only when told to, and can vanish.

    Make one with ``await RawClient.connect(url)`` (or ``stalled_reader(url)``).
    """

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.messages = 0
        self.gone = False

    @classmethod
    async def connect(cls, url: str, *, rcvbuf: int | None = None, timeout: float = 5) -> Self:
        """Open a TCP connection and complete the WebSocket handshake; raise if refused."""
        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in uri.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if rcvbuf is not None:
            # Before connect(): TCP agrees on its window scale in the SYN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        protocol = ClientProtocol(uri, max_size=None)
        client = cls(sock, protocol)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (uri.host, uri.port))
                protocol.send_request(protocol.connect())
                await client._flush()
                while protocol.state is State.CONNECTING:
                    await client._read()
        except BaseException:
            sock.close()
            raise
        if protocol.handshake_exc is not None:
            sock.close()
            raise protocol.handshake_exc
        return client

    async def resume(self, timeout: float = 5) -> Resumed:
        """Read everything the server sent, until it closes or ``timeout`` passes.

        Answers the server's close frame (and pings) as a client should, then hangs up.
        """
        try:
            async with asyncio.timeout(timeout):
                while self.protocol.state is not State.CLOSED and not self.gone:
                    await self._read()
        except TimeoutError:
            return Resumed(self.messages, None)
        except ConnectionError:
            pass  # reset by the server: no close frame came
        self.vanish()
        if self.protocol.close_rcvd is None:
            return Resumed(self.messages, CloseCode.ABNORMAL_CLOSURE)
        return Resumed(
            self.messages, self.protocol.close_rcvd.code, self.protocol.close_rcvd.reason
        )

    def vanish(self) -> None:
        """Reset the connection with no close frame: the server gets no goodbye."""
        if self.gone:
            return
        self.gone = True
        # Linger on, timeout 0: close() sends a TCP RST instead of a polite FIN.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    async def _read(self) -> None:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 1 << 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            # A message ends with a frame marked fin: its only frame, or its last fragment.
            if isinstance(event, Frame) and event.fin and event.opcode in _DATA:
                self.messages += 1
        await self._flush()
        if not data:
            self.vanish()

    async def _flush(self) -> None:
        """Send what the protocol has to say: the request, pongs, the reply to a close."""
        for chunk in self.protocol.data_to_send():
            if chunk:
                await asyncio.get_running_loop().sock_sendall(self.sock, chunk)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.vanish()


async def stalled_reader(url: str, *, rcvbuf: int = 4096, timeout: float = 5) -> RawClient:
    """Connect with a tiny receive buffer and read nothing until ``resume()``."""
    return await RawClient.connect(url, rcvbuf=rcvbuf, timeout=timeout)


@contextlib.asynccontextmanager
async def server_busy(server: RunningServer, limit: float = 5) -> AsyncIterator[None]:
    """Block the server's event loop until the ``async with`` block ends (at most ``limit`` s)."""
    started, release = threading.Event(), threading.Event()

    async def hog() -> None:
        started.set()
        release.wait(limit)  # blocks the loop on purpose: nothing else runs on it meanwhile

    hogging = asyncio.ensure_future(asyncio.to_thread(server.call, hog(), limit + 5))
    try:
        if not await asyncio.to_thread(started.wait, limit):
            raise TimeoutError(f"the server's loop did not pick up the block within {limit} s")
        yield
    finally:
        release.set()
        await hogging


async def settled(server: RunningServer, remaining: int = 0, timeout: float = 5) -> None:
    """Wait until the server has finished with all its WebSockets but ``remaining``.

    Once it has, it has also logged whatever those connections made it log.
    """
    sessions = server.app.state.sessions
    await eventually(lambda: len(sessions) <= remaining, timeout=timeout)


@dataclasses.dataclass
class ServerError:
    """One log record, reduced to what a lesson can print the same way every run."""

    level: str
    message: str
    raised: list[str]  # each exception of the chain, oldest first, with where it was raised

    def __str__(self) -> str:
        return "\n".join([f"{self.level}: {self.message}", *(f"  {r}" for r in self.raised)])


# The server's plumbing: a traceback through these says nothing about the lesson's code.
_PLUMBING = {"runner.py", "sessions.py", "origins.py"}
_PACKAGE = Path(__file__).resolve().parent.parent


def _raised(exc: BaseException | None) -> list[str]:
    """Each exception of the chain, oldest first, with the last lesson function it went through."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__context__
    lines = []
    for error in reversed(chain):
        frames = traceback.extract_tb(error.__traceback__)
        ours = [
            f
            for f in frames
            if _PACKAGE in Path(f.filename).resolve().parents
            and Path(f.filename).name not in _PLUMBING
        ]
        where = f" in {Path(ours[-1].filename).stem}.{ours[-1].name}()" if ours else ""
        code = getattr(error, "code", None)
        detail = f" (code {code})" if code is not None else (f": {error}" if str(error) else "")
        lines.append(f"{type(error).__name__}{detail}{where}")
    return lines


class _Collect(logging.Filter):
    def __init__(self, into: list[ServerError]) -> None:
        super().__init__()
        self.into = into

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            error = record.exc_info[1] if record.exc_info else None
            self.into.append(
                ServerError(record.levelname, record.getMessage().strip(), _raised(error))
            )
            return False  # collected, not printed
        return True


@contextlib.contextmanager
def server_errors(*loggers: str) -> Iterator[list[ServerError]]:
    """Collect the server's warnings and errors (uvicorn's and asyncio's by default)."""
    collected: list[ServerError] = []
    collect = _Collect(collected)
    names = loggers or ("uvicorn.error", "asyncio")
    for name in names:
        logging.getLogger(name).addFilter(collect)
    try:
        yield collected
    finally:
        for name in names:
            logging.getLogger(name).removeFilter(collect)
