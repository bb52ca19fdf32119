"""Fan-out that holds up: a bounded send queue per connection, drained by its own writer task.

The seed's broadcast awaits each ``send`` in turn, so one client that stops reading stalls every
other client, and one dead client raises out of the loop. Here a broadcast never awaits a
socket (it writes to one that takes bytes now, or *enqueues*), so it cannot be stalled, and it
touches no collection a disconnect could change mid-loop. Each ``Peer`` drains its own queue
in its own task, which runs only while something is queued. A peer whose queue overflows is a
slow consumer: it is cut off with close code 4008, and nobody else notices.

Per-frame costs add up at a thousand receivers, so both sides work in bursts: a writer sends
everything queued in one run, and an endpoint reads a few messages ahead (``incoming``), so
a burst from one client is broadcast in one go and costs each writer one task switch.

A frame a broadcast writes to a thousand sockets is encoded and framed once (``frames.Framed``).
A peer with nothing queued (and so no writer running) takes it straight to its socket, with one
plain call (``frames.frame_writer``): no task switch, no coroutine per delivery. Only a peer
that has a backlog, or whose client's buffers are full, queues it for its writer; so the order
per peer, the backpressure and the slow-consumer cut-off are the same either way.

Memory per connection is bounded by the queue size and the read-ahead (plus uvicorn's transport
buffer, which respects TCP flow control: the writer waits while it is above its high-water mark).

An app's endpoints make their peers with ``peers.Peers.open``, which lists each one until it
closes, so a shutdown can close each one *behind* the frames already queued for it (lesson 09):
a close frame sent straight through ASGI would overtake them. A ``Peer`` knows only the registry
it is given, never the app serving it.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from starlette.types import Message

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.frames import Framed, WriteFrame, frame_writer

if TYPE_CHECKING:
    from course_server.realtime.peers import Peers

READ_AHEAD = 16
"""Messages a peer's reader takes from the server ahead of its endpoint (see ``incoming``)."""

Frame = str | bytes


class PeerState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # a close is queued behind pending frames, or being sent
    CLOSED = "closed"


class _Close:
    """Queue item: flush everything before me, then send a close frame."""

    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


def encode(message: Any) -> Frame:
    """Serialise once per broadcast, not once per receiver: dicts and models become JSON text."""
    if isinstance(message, str | bytes):
        return message
    if isinstance(message, BaseModel):
        return message.model_dump_json()
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def framed(message: Any) -> Framed:
    """``message`` ready for many peers: encoded now, framed by the first peer that writes it.

    A ``Framed`` passes as it is, so the bytes a broadcast framed once are not built again.
    """
    return message if isinstance(message, Framed) else Framed(encode(message))


def _wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve ``waiter`` if a task still waits on it (a cancelled wait leaves it done)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Peer:
    """One accepted WebSocket with a bounded outgoing queue and the task that drains it.

    ``send()`` never blocks and never raises: it returns False when the frame was not queued
    (the peer is closing, or was just cut off as a slow consumer).
    """

    def __init__(
        self,
        websocket: WebSocket,
        *,
        queue_size: int = 256,
        close_timeout: float = 1.0,
        on_closed: Callable[[Peer], None] | None = None,
        registry: Peers | None = None,
    ) -> None:
        self.websocket = websocket
        self.state = PeerState.OPEN
        self.close_code: int | None = None
        # The backlog and its writer exist only while frames wait: most peers, most of the time,
        # have none (their frames go straight to the socket), and with ten thousand connections
        # an idle deque (~0.6 KiB) and task (~0.7 KiB) each add up (lesson 09's load test).
        # A deque, not an asyncio.Queue: a broadcast to N peers queues N times, and a Queue's
        # bookkeeping (getters, unfinished tasks, its own deques) costs per item and per peer.
        self._backlog: deque[Framed | _Close] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._queue_size = queue_size
        self._started = False
        # What the endpoint (in incoming()) and the reader wait on: a message, room in the inbox.
        self._arrived: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._close_timeout = close_timeout
        self._on_closed = on_closed
        self._closed: asyncio.Event | None = None  # made by the first wait_closed(), if any
        # The loop keeps only weak references to tasks: an unreferenced one can vanish mid-close.
        self._closer: asyncio.Task[None] | None = None
        self._registry = registry
        self._write_frame: WriteFrame | None = None  # the server's fast path, found in start()

    @property
    def queued(self) -> int:
        return len(self._backlog) if self._backlog is not None else 0

    def start(self) -> None:
        """Start sending; call once, after ``accept()``. Joins ``registry``, if given."""
        if self._started:
            raise RuntimeError("Peer.start() was already called")
        self._started = True
        self._write_frame = frame_writer(self.websocket)
        if self._backlog:  # frames sent before start() wait for a writer
            self._writer = asyncio.get_running_loop().create_task(self._drain(self._backlog))
        if self._registry is not None:
            self._registry.add(self)

    def send(self, message: Any) -> bool:
        if self.state is not PeerState.OPEN:
            return False
        if self.queued >= self._queue_size:
            self._cut_off(CloseCode.SLOW_CONSUMER, "slow consumer")
            return False
        self._put(framed(message))
        return True

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close after the frames already queued have been sent."""
        if self.state is not PeerState.OPEN:
            return
        self.state = PeerState.CLOSING
        if self.queued >= self._queue_size:
            self._cut_off(code, reason)
        else:
            self._put(_Close(code, reason))

    def _put(self, item: Framed | _Close) -> None:
        backlog = self._backlog
        if backlog is None:
            # Nothing is ahead of this frame (a writer holding one it popped keeps its backlog
            # until it is done), so it may go straight to the socket, if the socket takes it.
            write = self._write_frame
            if write is not None and isinstance(item, Framed) and write(item.wire):
                return
            backlog = self._backlog = deque()
            if self._started:
                self._writer = asyncio.get_running_loop().create_task(self._drain(backlog))
        backlog.append(item)

    async def wait_closed(self) -> None:
        if self.state is PeerState.CLOSED:
            return
        if self._closed is None:
            self._closed = asyncio.Event()
        await self._closed.wait()

    async def incoming(self) -> AsyncIterator[Message]:
        """The peer's frames as ASGI messages (``text`` or ``bytes`` key), until it is gone.

        Ends when the client disconnects *or* when the server closed this peer, whichever
        comes first, so an endpoint never waits on a reader that was cut off.

        A reader task takes messages a few ahead of the endpoint, so a burst from this client
        is handled in one go and each receiver's writer wakes once for all of its frames. Those
        frames land in every receiver's queue before any writer runs: the read-ahead stays a
        small share of the queue (``READ_AHEAD``, at most 1/16 of ``queue_size``).
        """
        # A list, not a deque: it holds at most ``ahead`` messages, so pop(0) is cheap, and an
        # empty list is 56 bytes where a deque is 600 (held by every connection: lesson 09).
        inbox: list[Message] = []
        ahead = max(1, min(READ_AHEAD, self._queue_size // 16))
        loop = asyncio.get_running_loop()
        reader = self._reader = loop.create_task(self._read(inbox, ahead))
        try:
            while self.state is not PeerState.CLOSED:
                if not inbox:
                    if reader.done():
                        reader.result()  # how the reader ended: a disconnect error, say
                        return
                    self._arrived = loop.create_future()
                    await self._arrived  # woken by the reader, or by _finish()
                    continue
                message = inbox.pop(0)
                _wake(self._room)  # the reader may wait for room: there is some now
                if message["type"] == "websocket.disconnect":
                    self.close_code = message.get("code", 1005)
                    self._finish()
                    return
                yield message
        except (WebSocketDisconnect, RuntimeError):
            self._finish()
        finally:
            # Also when the endpoint is cancelled mid-wait: no receive may outlive the loop. A
            # reader that failed once the peer was closed has nobody to tell: mark it as heard.
            if not reader.cancel() and not reader.cancelled():
                reader.exception()

    async def _read(self, inbox: list[Message], ahead: int) -> None:
        """The reader task: the client's messages into ``inbox``, at most ``ahead`` of them.

        The server stops reading the socket while a message waits to be received, so a client
        that sends faster than its endpoint handles is still held back by TCP flow control.
        """
        receive, loop = self.websocket.receive, asyncio.get_running_loop()
        try:
            while True:
                if len(inbox) >= ahead:
                    self._room = loop.create_future()
                    await self._room
                message = await receive()
                inbox.append(message)
                _wake(self._arrived)
                if message["type"] == "websocket.disconnect":
                    return
        finally:
            _wake(self._arrived)  # however the reader ends, the endpoint must not wait for it

    async def aclose(self) -> None:
        """Stop the writer (and any close in flight) and release the peer, by any exit path."""
        tasks = [
            t for t in (self._writer, self._closer, self._reader) if t is not None and not t.done()
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            # wait(), not gather(): if *we* are cancelled meanwhile (TestClient cancels the app
            # right after the close), gather would re-raise our writer's CancelledError as ours.
            await asyncio.wait(tasks)
        self._finish()

    def _cut_off(self, code: int, reason: str) -> None:
        """Drop what is queued and close now: this peer is not keeping up."""
        self.state = PeerState.CLOSING
        if self._writer is not None:
            self._writer.cancel()
        self._backlog = None  # free the backlog now, not when the peer is collected
        self._closer = asyncio.get_running_loop().create_task(self._send_close(code, reason))

    async def _send_close(self, code: int, reason: str) -> None:
        self.close_code = code
        try:
            # A peer that reads nothing never frees room for the close frame: don't wait forever.
            async with asyncio.timeout(self._close_timeout):
                await self.websocket.close(code, reason)
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            pass
        self._finish()

    async def _drain(self, backlog: deque[Framed | _Close]) -> None:
        """The writer: send the backlog, in order, then end (and with it, the backlog).

        It runs only while frames wait: a client whose buffers were full, a burst that
        arrived while it was sending, a close queued behind frames. A send waits only while
        the client's buffers are full; what is queued meanwhile is sent in the same run.
        """
        websocket, write = self.websocket, self._write_frame
        try:
            while backlog:
                item = backlog.popleft()
                if isinstance(item, _Close):
                    await self._send_close(item.code, item.reason)
                    return
                if write is not None and write(item.wire):
                    continue
                # The ASGI path: it waits while the client's buffers are full.
                if isinstance(item.data, str):
                    await websocket.send_text(item.data)
                else:
                    await websocket.send_bytes(item.data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._finish()
            return
        # No await since the backlog was found empty: nothing can have been queued behind it.
        self._backlog = self._writer = None

    def _finish(self) -> None:
        if self.state is PeerState.CLOSED:
            return
        self.state = PeerState.CLOSED
        if self._closed is not None:
            self._closed.set()
        _wake(self._arrived)  # an endpoint waiting in incoming() stops
        if self._registry is not None:
            self._registry.discard(self)
        # A writer left waiting on a full client's buffer would live until aclose(); end it now.
        writer = self._writer
        if writer is not None and not writer.done() and writer is not asyncio.current_task():
            writer.cancel()
        if self._on_closed is not None:
            self._on_closed(self)


class Group:
    """A set of peers that receive the same broadcasts: a room, a user's devices, everyone."""

    def __init__(self) -> None:
        self._peers: set[Peer] = set()

    def __len__(self) -> int:
        return len(self._peers)

    def __iter__(self) -> Iterator[Peer]:
        return iter(tuple(self._peers))

    def add(self, peer: Peer) -> None:
        self._peers.add(peer)

    def discard(self, peer: Peer) -> None:
        self._peers.discard(peer)

    def broadcast(self, message: Any, exclude: Peer | None = None) -> int:
        """Queue ``message`` for every open peer but ``exclude``; return how many took it.

        Synchronous on purpose: with no ``await`` inside, no other task can add or remove a peer
        mid-loop, and no receiver can slow the sender down. Closed peers are pruned as found.
        """
        frame = framed(message)
        delivered = 0
        for peer in tuple(self._peers):
            if peer is exclude:
                continue
            if peer.state is PeerState.CLOSED:
                self._peers.discard(peer)
            elif peer.send(frame):
                delivered += 1
        return delivered
