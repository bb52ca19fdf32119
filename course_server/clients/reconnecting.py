"""A chat client that rides out dropped connections and server restarts: nothing lost or doubled.

``ReconnectingClient(url)`` speaks the chat protocol (``WS /chat/{room}/{username}``):

- **Backoff with full jitter**: retry n waits a random time in ``[0, min(cap, base * 2**n)]``,
  so a server that is down is not hammered, and the clients it just dropped do not all come
  back in the same millisecond. A connection that stayed up ``stable_after`` s resets n.
- **Resume and dedupe by id**: it reconnects with ``?last_id=`` the highest id it has seen and
  drops any event at or below it. Ids lower than the one it resumed from mean the server
  restarted with an empty memory: it starts counting again instead of hiding new events.
- **Resend until acked**: each message has a ``client_msg_id`` and stays in the outbox until
  acked; after a reconnect the unacked ones go again (the server acks a duplicate without
  posting it twice). At most ``max_in_flight`` are unacked at once, under the server's burst.
- **Events as an async iterator**: room events, ``resume`` and ``error`` frames (the
  ``messages`` models), and ``Connected``/``Disconnected`` notes.

A dead server is noticed by ``websockets``' own protocol pings (``ping_interval``,
``ping_timeout``): a Python client needs no application heartbeat. After a close code that
retrying cannot cure (``FINAL_CODES``; 4000 "Username taken" if the name was never ours), the
iteration raises ``Refused``. After we were admitted, 4000 means the server has not yet seen
our previous connection die: retrying is right.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from course_server.realtime.backoff import Backoff
from course_server.realtime.closecodes import CloseCode
from course_server.realtime.messages import (
    AckFrame,
    ErrorCode,
    ErrorFrame,
    MessageEvent,
    Pong,
    ResumeFrame,
    RoomEvent,
    ServerFrame,
)

FINAL_CODES = frozenset(
    {
        CloseCode.PROTOCOL_ERROR,
        CloseCode.UNSUPPORTED_DATA,
        CloseCode.INVALID_DATA,
        CloseCode.POLICY_VIOLATION,
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.AUTH_REQUIRED,
        CloseCode.AUTH_TIMEOUT,
        CloseCode.INVALID_TOKEN,
    }
)
"""Close codes after which the same connection would be refused again: stop, don't retry."""

_server_frame: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


@dataclasses.dataclass(frozen=True)
class Connected:
    """The ``number``-th connection is open; it asked for events after ``last_id``."""

    number: int
    last_id: int | None


@dataclasses.dataclass(frozen=True)
class Disconnected:
    """The connection ended (``code`` None: it never opened); the next try is in ``retry_in`` s."""

    code: int | None
    reason: str
    retry_in: float


class Refused(Exception):
    """The server closed with a code after which retrying cannot help."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code} {reason!r}: not retrying")
        self.code, self.reason = code, reason


Event = RoomEvent | ResumeFrame | ErrorFrame | Connected | Disconnected

_END = object()


class ReconnectingClient:
    """One chat member that reconnects by itself; ``async with`` it, ``send``, iterate events.

    Iterate the events, or stop reading them only briefly: at most ``max_events`` wait for you,
    then the client stops reading its socket, and the server treats it as a slow consumer.
    """

    def __init__(
        self,
        url: str,
        *,
        backoff: Backoff | None = None,
        stable_after: float = 5.0,
        max_in_flight: int = 8,
        max_outbox: int = 1000,
        max_events: int = 10_000,
        rate_limited_retry: float = 1.0,
        open_timeout: float = 5.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.url = url
        self.backoff = backoff or Backoff(base=0.1, cap=5.0)  # from 100 ms up to 5 s
        self.stable_after, self.rng = stable_after, rng
        self.max_in_flight, self.max_outbox = max_in_flight, max_outbox
        self.rate_limited_retry = rate_limited_retry
        self._open_timeout, self._ping_interval = open_timeout, ping_interval
        self._ping_timeout = ping_timeout
        self.last_id: int | None = None
        self.connections = 0  # connections opened so far
        self.admitted = False  # the server sent us a frame: the name was ours
        self._resume_from: int | None = None
        self._outbox: OrderedDict[str, str] = OrderedDict()  # client_msg_id -> content
        self._in_flight: set[str] = set()
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[object] = asyncio.Queue(maxsize=max_events)
        self._wake = asyncio.Event()  # the writer has something to do
        self._open = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._retry: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        self._websocket: ClientConnection | None = None
        self._closing = False

    # Public API -------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._runner = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def pending(self) -> int:
        """Messages sent but not acked yet (they are resent after a reconnect)."""
        return len(self._outbox)

    def send(self, content: str) -> str:
        """Queue a message; return its ``client_msg_id``. It is sent now, or after a reconnect."""
        if len(self._outbox) >= self.max_outbox:
            raise OverflowError(f"{self.max_outbox} messages are waiting for an ack already")
        key = f"{self._prefix}-{next(self._ids)}"
        self._outbox[key] = content
        self._drained.clear()
        self._wake.set()
        return key

    async def wait_open(self) -> None:
        """Return once a connection is open."""
        await self._open.wait()

    async def wait_acked(self) -> None:
        """Return once every message sent so far has been acked."""
        await self._drained.wait()

    def drop(self) -> None:
        """Cut the connection without a close frame, as a network failure would (for demos)."""
        if self._websocket is not None:
            self._websocket.transport.abort()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        item = await self._events.get()
        if item is _END:
            self._events.put_nowait(_END)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(item, Refused):
            self._events.put_nowait(_END)
            raise item
        return item  # type: ignore[return-value]  # queued: Event, Refused or _END (both above)

    async def aclose(self) -> None:
        """Close the connection and stop reconnecting; iteration ends after what is queued."""
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.wait([self._runner])
        self._end(_END)

    # The connection loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self._closing:
            opened_at: float | None = None
            code: int | None = None
            reason = ""
            try:
                async with connect(
                    self._resume_url(),
                    open_timeout=self._open_timeout,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_timeout,
                ) as websocket:
                    opened_at = loop.time()
                    await self._serve(websocket)
                code, reason = websocket.close_code, websocket.close_reason or ""
            except (OSError, TimeoutError, InvalidHandshake):
                pass  # the server is not there (yet): back off and try again
            finally:
                self._open.clear()
            if code is not None and self._final(code):
                self._end(Refused(code, reason))
                return
            if opened_at is not None and loop.time() - opened_at >= self.stable_after:
                attempt = 0
            delay = self.backoff.delay(attempt, self.rng)
            attempt += 1
            await self._emit(Disconnected(code, reason, delay))
            await asyncio.sleep(delay)  # the backoff itself: a pause, not a wait for an event

    async def _serve(self, websocket: ClientConnection) -> None:
        """One connection: announce it, send the outbox, read until it closes."""
        self.connections += 1
        self._resume_from = self.last_id
        self._in_flight.clear()
        self._open.set()
        self._websocket = websocket
        await self._emit(Connected(self.connections, self.last_id))
        writer = asyncio.create_task(self._write(websocket))
        try:
            async for raw in websocket:
                await self._receive(raw)
        except ConnectionClosed:
            pass  # closed without a proper close frame: the code tells the rest
        finally:
            self._websocket = None
            writer.cancel()
            await asyncio.wait([writer])

    async def _write(self, websocket: ClientConnection) -> None:
        """Send outbox messages in order, at most ``max_in_flight`` unacked at once."""
        try:
            while True:
                self._wake.clear()
                for key, content in list(self._outbox.items()):
                    if len(self._in_flight) >= self.max_in_flight:
                        break
                    if key in self._in_flight or key not in self._outbox:
                        continue
                    frame = {"type": "message", "content": content, "client_msg_id": key}
                    await websocket.send(json.dumps(frame))
                    self._in_flight.add(key)
                await self._wake.wait()
        except ConnectionClosed:
            return  # what was not acked is sent again on the next connection

    async def _receive(self, raw: str | bytes) -> None:
        self.admitted = True
        try:
            frame = _server_frame.validate_json(raw)
        except ValidationError:
            return  # a newer server's kind of frame: ignore it rather than break
        if isinstance(frame, AckFrame):
            self._acked(frame.client_msg_id)
        elif isinstance(frame, Pong):
            pass
        elif isinstance(frame, RoomEvent):
            if self._fresh(frame):
                if isinstance(frame, MessageEvent) and frame.client_msg_id:
                    self._acked(frame.client_msg_id)
                await self._emit(frame)
        else:
            if isinstance(frame, ErrorFrame) and frame.code is ErrorCode.RATE_LIMITED:
                self._resend_later()
            await self._emit(frame)

    def _fresh(self, event: RoomEvent) -> bool:
        """Whether ``event`` is new to us; remember its id if so."""
        if self._resume_from is not None:
            # Asked for events after N, the server sends ids above N only. A lower one means it
            # restarted with an empty memory and counts from 1 again: our ids mean nothing now.
            if event.id <= self._resume_from:
                self.last_id = None
            self._resume_from = None
        if self.last_id is not None and event.id <= self.last_id:
            return False
        self.last_id = event.id
        return True

    def _acked(self, key: str) -> None:
        if self._outbox.pop(key, None) is None:
            return
        self._in_flight.discard(key)
        if not self._outbox:
            self._drained.set()
        self._wake.set()

    def _resend_later(self) -> None:
        """The server dropped one of ours without saying which: resend all unacked, later."""

        def resend() -> None:
            self._retry = None
            self._in_flight.clear()
            self._wake.set()

        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(self.rate_limited_retry, resend)

    # Helpers ----------------------------------------------------------------------------------

    def _final(self, code: int) -> bool:
        return code in FINAL_CODES or (code == CloseCode.USERNAME_TAKEN and not self.admitted)

    def _resume_url(self) -> str:
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "last_id"]
        if self.last_id is not None:
            query.append(("last_id", str(self.last_id)))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _emit(self, event: Event) -> None:
        await self._events.put(event)  # waits while the reader is max_events behind

    def _end(self, item: object) -> None:
        try:
            self._events.put_nowait(item)
        except asyncio.QueueFull:
            # Nobody is reading: make room for the ending, the oldest event goes.
            self._events.get_nowait()
            self._events.put_nowait(item)
