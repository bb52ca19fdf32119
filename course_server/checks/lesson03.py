"""Checks for lesson 03's exercises: a broadcast that prunes the dead, a queue per connection,
and a client that reconnects with backoff.

The checks own the endpoints; the learner's class is what they call. A "ghost" is a connection
whose client is gone but which is still in the hub, as when an endpoint ends without calling
``disconnect`` (deterministic, unlike racing a real disconnect). A stalled client is
``misbehave.stalled_reader``: a raw socket with a tiny receive buffer that reads nothing.

03.3's ``reconnect`` gets a fake ``connect`` (a ``Script`` says what it raises, call by call),
``rng`` (drawn values) and ``sleep`` (which logs the wait and returns at once): its log of tries
and waits is compared with the prompt's rule (``model``) without waiting for real. Two checks
use the real thing: a server that answers its first handshakes with HTTP 503, and the default
``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import random
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse
from websockets.asyncio.client import ClientConnection
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.http11 import Response

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.cases import seeded
from course_server.checks.harness import Harness, shown
from course_server.checks.report import described
from course_server.checks.talk import WAIT, dial, receive
from course_server.clients import misbehave
from course_server.lab.waiting import eventually

# --- 03.1 broadcast_except, pruning the dead -------------------------------------------------

hub = exercise(
    "03.1",
    "Broadcast to everyone else, pruning the dead",
    target="Hub",
    references=(
        "course_server.seed.naive:ConnectionManager",
        "course_server.realtime.fanout:Group",
    ),
)


SAYINGS = ["hi", "héllo ☃", "ça va?", "こんにちは", "x" * 50, 'a "quoted" word']


class Room:
    """The learner's hub behind the check's endpoints, and every connection in join order."""

    def __init__(self, hub_class: Any) -> None:
        self.hub = hub_class()
        self.joined: list[WebSocket] = []
        self.ended = threading.Event()  # a /ghost or /closed endpoint has returned
        self.sending = threading.Event()  # a /waiting member's send is under way

    async def members(self, h: Harness) -> list[Any]:
        members: list[Any] = await h.on_server(lambda: list(self.hub.connections))
        return members


class Interrupting:
    """A connection whose first send first runs ``meanwhile``: other endpoints acting mid-send."""

    def __init__(self, websocket: WebSocket, meanwhile: Any) -> None:
        self._websocket = websocket
        self._meanwhile = meanwhile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._websocket, name)

    async def send_text(self, data: str) -> None:
        meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:
            await meanwhile()
        await self._websocket.send_text(data)


def serve_hub(h: Harness, hub_class: Any) -> Room:
    """Mount ``/hub`` (talk: each text goes to the others), ``/ghost`` and ``/closed``.

    A ghost's client leaves and its endpoint ends without ``disconnect``; a closed member's
    endpoint closes the connection itself and ends without ``disconnect``: both stay listed.
    """
    room = Room(hub_class)

    async def talk(websocket: WebSocket) -> None:
        await room.hub.connect(websocket)
        room.joined.append(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                await room.hub.broadcast_except(f"Someone said: {text}", websocket)
        finally:
            room.hub.disconnect(websocket)

    async def ghost(websocket: WebSocket) -> None:
        await room.hub.connect(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass  # and no disconnect(): the hub still lists this dead connection
        finally:
            room.ended.set()

    async def silent(websocket: WebSocket) -> None:
        """Reads nothing: its client's close goes unnoticed, the connection looks open."""
        await room.hub.connect(websocket)
        await asyncio.Event().wait()  # cancelled when the server stops

    async def closed(websocket: WebSocket) -> None:
        await room.hub.connect(websocket)
        await websocket.close(1000, "closed by the server")  # and no disconnect() either
        room.ended.set()

    async def interrupting(websocket: WebSocket) -> None:
        """Mid-send, the first member leaves, and the server closes the one after this one."""

        async def meanwhile() -> None:
            first, after_me = room.joined[0], room.joined[1]
            room.hub.disconnect(first)
            await after_me.close(1000, "closed by the server")
            room.hub.disconnect(after_me)

        await room.hub.connect(Interrupting(websocket, meanwhile))
        while True:
            await websocket.receive_text()

    async def waiting(websocket: WebSocket) -> None:
        """Mid-send, this member waits until a third client has joined ``/hub``."""

        async def meanwhile() -> None:
            room.sending.set()
            with contextlib.suppress(TimeoutError):  # the check then says who was missed
                await eventually(lambda: len(room.joined) >= 3, timeout=WAIT)

        await room.hub.connect(Interrupting(websocket, meanwhile))
        while True:
            await websocket.receive_text()

    h.websocket("/hub", talk)
    h.websocket("/waiting", waiting)
    h.websocket("/ghost", ghost)
    h.websocket("/silent", silent)
    h.websocket("/closed", closed)
    h.websocket("/interrupting", interrupting)
    return room


async def wait_for_members(h: Harness, room: Room, count: int) -> None:
    async def joined() -> bool:
        return len(await room.members(h)) == count

    try:
        await eventually(joined, timeout=WAIT)
    except TimeoutError:
        raise CheckFailed(f"hub.connections never held the {count} connected clients") from None


async def join(h: Harness, room: Room, server: Any, stack: Any, path: str, count: int) -> Any:
    """Connect one client to ``path`` and wait until the hub lists ``count`` connections."""
    client = await stack.enter_async_context(dial(server.ws(path)))
    await wait_for_members(h, room, count)
    return client


async def hears(h: Harness, client: Any, name: str, saying: str, why: str = "") -> None:
    try:
        got = await receive(client, name, harness=h)
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}{why}") from None
    expected = f"Someone said: {saying}"
    expect(got == expected, f"{name} received {got!r}, not {expected!r}")


@hub.check("everyone but the sender gets the message")
async def _others(h: Harness, hub_class: Any) -> None:
    rng = random.Random()
    room = serve_hub(h, hub_class)
    server = await h.serve()
    names = rng.sample(["alice", "bob", "carol", "dan", "erin", "frank"], rng.randint(3, 5))
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for n, name in enumerate(names, 1):
            clients[name] = await join(h, room, server, stack, "/hub", n)
        first, second = rng.sample(names, 2)
        for sender, saying in zip((first, second), rng.sample(SAYINGS, 2), strict=True):
            await clients[sender].send(saying)
            for name in names:
                if name != sender:
                    why = f" after {sender} said {saying!r}"
                    await hears(h, clients[name], name, saying, why)
        # Had the first sender heard herself, her own message would have come before this one.


@hub.check("dead connections (their clients gone) are pruned; the others still get the message")
async def _prune(h: Harness, hub_class: Any) -> None:
    room = serve_hub(h, hub_class)
    server = await h.serve()
    async with contextlib.AsyncExitStack() as stack:
        async with dial(server.ws("/ghost")):
            await wait_for_members(h, room, 1)  # the ghost first: a broadcast meets it first
        await asyncio.to_thread(room.ended.wait, WAIT)
        # Then one whose endpoint never reads: it looks open (its state says CONNECTED) until a
        # send to it raises WebSocketDisconnect.
        async with dial(server.ws("/silent")):
            await wait_for_members(h, room, 2)
        bob = await join(h, room, server, stack, "/hub", 3)
        carol = await join(h, room, server, stack, "/hub", 4)
        alice = await join(h, room, server, stack, "/hub", 5)
        why = (
            ": did the broadcast stop at, or skip past, a dead connection? (one looks open until "
            "a send to it raises)"
        )
        for saying in ("hi", "still here"):
            await alice.send(saying)
            await hears(h, bob, "bob", saying, why)
            await hears(h, carol, "carol", saying, why)
        # Alice's endpoint reads her next message only after the first broadcast is over.
        left = len(await room.members(h))
        expect(left == 3, f"after the broadcast, hub.connections held {left}: prune the dead ones")


@hub.check("members the server closed are pruned, and the sender's endpoint carries on")
async def _closed(h: Harness, hub_class: Any) -> None:
    room = serve_hub(h, hub_class)
    server = await h.serve()
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, Any] = {}
        order = ["closed", "bob", "closed", "carol", "alice"]
        for n, name in enumerate(order, 1):
            room.ended.clear()
            client = await join(
                h, room, server, stack, "/hub" if name != "closed" else "/closed", n
            )
            if name == "closed":
                await asyncio.to_thread(room.ended.wait, WAIT)
            else:
                clients[name] = client
        why = " (sending to a closed connection raises a RuntimeError: WebSocketDisconnected)"
        for saying in ("hi", "still here"):
            try:
                await clients["alice"].send(saying)
            except ConnectionClosed:
                raise CheckFailed(f"alice's connection closed{why}") from None
            await hears(h, clients["bob"], "bob", saying, why)
            await hears(h, clients["carol"], "carol", saying, why)
        left = len(await room.members(h))
        expect(left == 3, f"after the broadcasts, hub.connections held {left}, not 3")


@hub.check("members leaving during a broadcast do not throw it off")
async def _meanwhile(h: Harness, hub_class: Any) -> None:
    room = serve_hub(h, hub_class)
    server = await h.serve()
    async with contextlib.AsyncExitStack() as stack:
        await join(h, room, server, stack, "/hub", 1)  # carol: leaves mid-broadcast
        await join(h, room, server, stack, "/interrupting", 2)  # the send that takes a while
        await join(h, room, server, stack, "/hub", 3)  # erin: closed by the server meanwhile
        bob = await join(h, room, server, stack, "/hub", 4)
        alice = await join(h, room, server, stack, "/hub", 5)
        why = (
            ": while the broadcast awaited a send, the first member left and the server closed "
            "another (iterate over a copy; disconnect may already have removed a member)"
        )
        await alice.send("hi")
        await hears(h, bob, "bob", "hi", why)
        await alice.send("still here")
        await hears(h, bob, "bob", "still here", why)
        first = room.joined[0]
        back = first in await room.members(h)
        expect(
            not back,
            "the first member left (disconnect) while the broadcast awaited a send, and was in "
            "hub.connections again afterwards: prune from the live list, do not put a copy back",
        )


@hub.check("a member joining during a broadcast stays in the hub and hears the next one")
async def _joins_meanwhile(h: Harness, hub_class: Any) -> None:
    room = serve_hub(h, hub_class)
    server = await h.serve()
    async with contextlib.AsyncExitStack() as stack:
        await join(h, room, server, stack, "/waiting", 1)  # its send waits for dave to join
        bob = await join(h, room, server, stack, "/hub", 2)
        alice = await join(h, room, server, stack, "/hub", 3)
        await alice.send("hi")
        await asyncio.to_thread(room.sending.wait, WAIT)
        dave = await join(h, room, server, stack, "/hub", 4)  # mid-broadcast
        await hears(h, bob, "bob", "hi")
        await alice.send("still here")
        why = (
            ": dave joined while the broadcast before awaited a send; afterwards hub.connections "
            f"held {len(await room.members(h))} (do not put back a list copied before the sends)"
        )
        await hears(h, dave, "dave", "still here", why)
        await hears(h, bob, "bob", "still here")


@hub.check("everyone talking at once hears everyone else")
async def _at_once(h: Harness, hub_class: Any) -> None:
    room = serve_hub(h, hub_class)
    server = await h.serve()
    count = random.randint(4, 6)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await join(h, room, server, stack, "/hub", n) for n in range(1, count + 1)]
        await asyncio.gather(*(client.send(f"from {n}") for n, client in enumerate(clients)))
        for n, client in enumerate(clients):
            heard = {await receive(client, f"client {n}", harness=h) for _ in range(count - 1)}
            expected = {f"Someone said: from {m}" for m in range(count) if m != n}
            expect(heard == expected, f"client {n} heard {sorted(heard)}, not {sorted(expected)}")


# --- 03.2 a queue and a writer per connection ------------------------------------------------

outbox = exercise(
    "03.2",
    "A queue and a writer per connection",
    target="Outbox",
    references=("course_server.realtime.fanout:Peer",),
)

QUEUE_SIZE = 8
BIG = 60_000  # bytes per message: the kernel's buffers hold a few MB before a stalled send waits
MAX_MESSAGES = 400


def serve_outboxes(h: Harness, outbox_class: Any) -> list[Any]:
    """Mount ``/fan``: each connection gets an outbox and a writer task; returns the outboxes."""
    boxes: list[Any] = []

    async def fan(websocket: WebSocket) -> None:
        await websocket.accept()
        box = outbox_class(websocket, size=QUEUE_SIZE)
        writer = h.task(box.drain)
        boxes.append(box)
        try:
            while True:
                await websocket.receive_text()
        finally:
            boxes.remove(box)
            writer.cancel()

    h.websocket("/fan", fan)
    return boxes


async def wait_for_boxes(boxes: list[Any], count: int) -> None:
    try:
        await eventually(lambda: len(boxes) == count, timeout=WAIT)
    except TimeoutError:
        raise CheckFailed(f"the {count} clients never got their outboxes") from None


class Gated:
    """A connection whose ``send_text`` waits at a gate that never opens: a writer stuck mid-send.

    With the writer stuck on its first message, the queue fills one ``send`` at a time, so the
    check knows exactly which call finds it full.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self.entered = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._websocket, name)

    async def send_text(self, data: str) -> None:
        self.entered.set()
        await asyncio.Event().wait()  # never: the client is this far behind for good


def serve_gated(h: Harness, outbox_class: Any, size: int) -> list[Any]:
    """Mount ``/gated``: an outbox of ``size`` on a connection whose writer gets stuck."""
    boxes: list[Any] = []

    async def gated(websocket: WebSocket) -> None:
        await websocket.accept()
        connection = Gated(websocket)
        box = outbox_class(connection, size=size)
        writer = h.task(box.drain)
        boxes.append((box, connection))
        try:
            while True:
                await websocket.receive_text()
        finally:
            writer.cancel()

    h.websocket("/gated", gated)
    return boxes


async def stuck_writer(h: Harness, boxes: list[Any]) -> tuple[Any, bool]:
    """Send one message and wait until the writer is stuck sending it; the box and send's answer."""
    await wait_for_boxes(boxes, 1)
    box, connection = boxes[0]
    first = await h.on_server(lambda: box.send("first"))
    try:
        await eventually(lambda: connection.entered.is_set(), timeout=WAIT)
    except TimeoutError:
        raise CheckFailed("drain() never called send_text for the first queued message") from None
    return box, first


def messages(rng: random.Random, count: int) -> list[str]:
    return [f"{n} {rng.choice(SAYINGS)}" for n in range(count)]


@outbox.check("send() queues without waiting; the writer sends in order")
async def _in_order(h: Harness, outbox_class: Any) -> None:
    rng = random.Random()
    boxes = serve_outboxes(h, outbox_class)
    server = await h.serve()
    sent = messages(rng, rng.randint(3, QUEUE_SIZE))
    async with dial(server.ws("/fan")) as client:
        await wait_for_boxes(boxes, 1)
        queued = await h.on_server(lambda: [boxes[0].send(m) for m in sent])
        expect(queued == [True] * len(sent), f"send() returned {queued} for {len(sent)} messages")
        got = [await receive(client, "the client", harness=h) for _ in sent]
        expect(got == sent, f"the client received {got}, not {sent}")


@outbox.check("a client that keeps up is never cut off, however many messages it gets")
async def _keeps_up(h: Harness, outbox_class: Any) -> None:
    rng = random.Random()
    boxes = serve_outboxes(h, outbox_class)
    server = await h.serve()
    async with dial(server.ws("/fan")) as client:
        await wait_for_boxes(boxes, 1)
        for batch in range(4):
            # A whole queue's worth at once, read before the next: never more than it holds.
            sent = [f"{batch}.{m}" for m in messages(rng, QUEUE_SIZE)]
            queued = await h.on_server(lambda sent=sent: [boxes[0].send(m) for m in sent])
            total = batch * QUEUE_SIZE
            expect(
                queued == [True] * QUEUE_SIZE,
                f"after {total} messages the client had read, send() returned {queued} for "
                f"{QUEUE_SIZE} more: the queue was empty, so all fit",
            )
            got = [await receive(client, "the client", harness=h) for _ in sent]
            expect(got == sent, f"the client received {got}, not {sent}")


@outbox.check("send() says False exactly when the queue is full, and ever after")
async def _full(h: Harness, outbox_class: Any) -> None:
    size = random.randint(3, 8)
    boxes = serve_gated(h, outbox_class, size)
    server = await h.serve()
    async with dial(server.ws("/gated")):
        box, first = await stuck_writer(h, boxes)
        expect(first is True, f"send() returned {first!r} for the first message, not True")

        def fill() -> list[Any]:
            return [box.send(f"m{n}") for n in range(size + 2)]

        answers = await h.on_server(fill)
        expected = [True] * size + [False, False]
        expect(
            answers == expected,
            f"with the writer stuck on one message, an Outbox(size={size}) answered {answers} "
            f"to {size + 2} more sends, not {expected}",
        )

        def later() -> Any:
            while not box.queue.empty():  # as if the writer caught up after the cut-off
                box.queue.get_nowait()
            return box.send("after the cut-off")

        again = await h.on_server(later)
        expect(again is False, f"with room in the queue after the cut-off, send() said {again!r}")


@outbox.check("the cut-off closes the connection once, with 4008 'slow consumer'")
async def _cut_off(h: Harness, outbox_class: Any) -> None:
    size = random.randint(3, 8)
    boxes = serve_gated(h, outbox_class, size)
    server = await h.serve()
    async with dial(server.ws("/gated")) as client:
        box, _ = await stuck_writer(h, boxes)
        await h.on_server(lambda: [box.send(f"m{n}") for n in range(size + 1)])
        closing = await h.on_server(lambda: box.closing)
        expect(
            isinstance(closing, asyncio.Task),
            f"after the cut-off, self.closing was {closing!r}: keep the close task there",
        )
        await h.on_server(lambda: [box.send("later") for _ in range(3)])
        try:
            async with asyncio.timeout(WAIT):
                await client.wait_closed()
        except TimeoutError:
            raise CheckFailed(
                f"the client was not closed within {WAIT:g} s of the cut-off"
            ) from None
        seen = (client.close_code, client.close_reason)
        expect(
            seen == (4008, "slow consumer"),
            f"the client was closed with {seen[0]} {seen[1]!r}, not 4008 'slow consumer'",
        )
        now = await h.on_server(lambda: box.closing)
        expect(now is closing, "later send() calls started another close: close only once")
        failed = await h.on_server(
            lambda: closing.done() and not closing.cancelled() and closing.exception()
        )
        expect(not failed, f"the close task raised {failed!r}")


@outbox.check("a client that stops reading is cut off with 4008; the other gets everything", 10)
async def _slow_consumer(h: Harness, outbox_class: Any) -> None:
    boxes = serve_outboxes(h, outbox_class)
    server = await h.serve()
    stalled = await misbehave.stalled_reader(server.ws("/fan"))
    try:
        async with dial(server.ws("/fan"), max_size=None) as reader:
            await wait_for_boxes(boxes, 2)
            slow, fast = boxes
            sent = 0

            def to_both(message: str) -> Any:
                queued = slow.send(message)
                fast.send(message)
                return queued

            # Paced by the reader: a healthy client never falls behind; the stalled one does.
            for sent in range(1, MAX_MESSAGES + 1):
                to_slow = await h.on_server(to_both, f"{sent:04d}" + "x" * BIG)
                got = await receive(reader, "the reading client")
                expect(got[:4] == f"{sent:04d}", f"the reading client got message {got[:4]}")
                if to_slow is False:
                    break
            later = await h.on_server(lambda: slow.send("after the cut-off"))
        resumed = await stalled.resume(timeout=1)
    finally:
        stalled.vanish()
    expect(
        (resumed.close_code, resumed.close_reason) == (4008, "slow consumer"),
        f"the stalled client, {sent} messages later: {resumed}; cut it off with 4008 "
        "'slow consumer' when its queue is full",
    )
    expect(later is False, f"send() after the cut-off returned {later!r}, not False")


# --- 03.3 reconnecting with capped exponential backoff and full jitter -----------------------

retrying = exercise(
    "03.3",
    "Reconnect with capped exponential backoff and full jitter",
    target="reconnect",
    references=(
        "course_server.realtime.backoff:Backoff",
        "course_server.clients.reconnecting:ReconnectingClient",
    ),
)

RETRYABLE = (OSError, InvalidHandshake)
"""What the prompt calls a connection error (``TimeoutError`` is an ``OSError`` too)."""

CONNECT = "connect"
"""A call of ``connect()`` in a run's log; a wait is logged as its seconds (a float)."""

TOO_MANY = 40
"""Calls of ``connect()`` or ``sleep()`` past what the script allows before the check stops them."""


class Stop(BaseException):
    """Raised into code that keeps calling ``connect()`` or ``sleep()``: ends a loop with no end.

    A ``BaseException``, so ``except Exception`` in the learner's code lets it through; the fake
    ``sleep`` never suspends, so such a loop would otherwise spin its thread for good.
    """


@dataclasses.dataclass(frozen=True)
class Script:
    """One call of ``reconnect``: its arguments, and what ``connect()`` raises, call by call.

    ``connect()`` raises ``failures[0]``, ``failures[1]``, …, then returns a connection;
    ``rng()`` returns ``draws[0]``, ``draws[1]``, … and starts over.
    """

    base: float
    cap: float
    attempts: int
    failures: tuple[Exception, ...]
    draws: tuple[float, ...] = (0.5,)

    def told(self) -> str:
        draws = ", ".join(f"{d:g}" for d in self.draws[:4]) + (", …" if len(self.draws) > 4 else "")
        names = [type(e).__name__ for e in self.failures]
        if not names:
            failing = "connect() connecting at once"
        elif len(set(names)) == 1:
            failing = f"connect() raising {names[0]} {times(len(names))}, then connecting"
        else:
            raised = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
            failing = f"connect() raising {raised} ({len(names)} errors), then connecting"
        return (
            f"base={self.base:g}, cap={self.cap:g}, attempts={self.attempts}, rng() giving "
            f"{draws}, {failing}"
        )


@dataclasses.dataclass
class Run:
    """What one call of ``reconnect`` did: its log, and what it returned or raised."""

    log: list[object]
    returned: object = None
    raised: BaseException | None = None
    stopped: bool = False  # the check stopped calls that went on past TOO_MANY


class Connection:
    """What the fake ``connect()`` returns: a connection, as far as ``reconnect`` can tell."""

    def __repr__(self) -> str:
        return "<the connection connect() returned>"


def bound(script: Script, n: int) -> float:
    """The most retry ``n`` may wait: ``min(cap, base·2ⁿ)`` (2⁶⁴ is past any cap here)."""
    return min(script.cap, script.base * 2.0 ** min(n, 64))


def model(script: Script) -> tuple[list[object], Exception | None]:
    """The log the prompt's rule gives, and the error ``reconnect`` raises (None: it connects)."""
    log: list[object] = []
    draws = itertools.cycle(script.draws)
    for n in range(script.attempts):
        log.append(CONNECT)
        if n == len(script.failures):
            return log, None
        error = script.failures[n]
        if n == script.attempts - 1 or not isinstance(error, RETRYABLE):
            return log, error
        log.append(next(draws) * bound(script, n))
    raise AssertionError("attempts must be at least 1")


async def call_reconnect(
    reconnect: Any,
    script: Script,
    connect: Callable[[], Awaitable[object]],
    log: list[object],
    *,
    fake_sleep: bool = True,
) -> Any:
    """Call ``reconnect(connect, …)`` with ``script``'s arguments and ``rng`` draws.

    Each call of ``connect()`` goes into ``log`` as ``CONNECT``; with ``fake_sleep``, each wait
    goes in as its seconds and returns at once, without it ``reconnect`` waits its own way. Past
    twice the calls the script allows, ``Stop`` ends a loop that would never end.
    """
    draws = itertools.cycle(script.draws)
    most = 2 * (max(script.attempts, len(script.failures)) + TOO_MANY)

    def logged(entry: object) -> None:
        log.append(entry)
        if len(log) > most:
            raise Stop

    async def logged_connect() -> object:
        logged(CONNECT)
        return await connect()

    async def sleep(seconds: float) -> None:
        logged(seconds)

    options = {"sleep": sleep} if fake_sleep else {}
    return await reconnect(
        logged_connect,
        base=script.base,
        cap=script.cap,
        attempts=script.attempts,
        rng=lambda: next(draws),
        **options,
    )


async def run_script(reconnect: Any, script: Script) -> Run:
    """Call ``reconnect`` as the script says, with a fake ``connect``, ``rng`` and ``sleep``."""
    run = Run([])
    connection = Connection()
    calls = 0

    async def connect() -> Connection:
        nonlocal calls
        calls += 1
        if calls <= len(script.failures):
            raise script.failures[calls - 1]
        return connection

    try:
        run.returned = await call_reconnect(reconnect, script, connect, run.log)
    except NotImplementedError:
        raise
    except Stop:
        run.stopped = True
    except Exception as exc:
        run.raised = exc
    if run.returned is not connection:
        run.returned = NotTheConnection(run.returned)
    return run


@dataclasses.dataclass(frozen=True)
class NotTheConnection:
    """``reconnect`` returned ``value``, not what ``connect()`` returned."""

    value: object


def waited(seconds: object) -> str:
    return f"{seconds:.6g} s" if isinstance(seconds, int | float) else repr(seconds)


def times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def log_fault(script: Script, log: list[object], values: bool = True) -> str | None:
    """How ``log`` strays from the rule, for the script; None if it does not.

    ``values``: compare the waits' lengths too, not only where they come.
    """
    expected, error = model(script)
    tries = log.count(CONNECT)
    retry = 0
    for step, (mine, right) in enumerate(zip(log, expected, strict=False)):
        if right == CONNECT and mine != CONNECT:
            if step == 0:
                return f"you waited {waited(mine)} before the first try: try at once"
            return f"you waited again ({waited(mine)}) before retry {retry}: wait once"
        if right != CONNECT and mine == CONNECT:
            return f"retry {retry} came with no wait before it: await sleep(...) first"
        if right != CONNECT:
            assert isinstance(right, float)
            if values and not (
                isinstance(mine, int | float) and math.isclose(mine, right, rel_tol=1e-9)
            ):
                draw = script.draws[retry % len(script.draws)]
                return (
                    f"before retry {retry} you waited {waited(mine)}, not {waited(right)} = "
                    f"rng() {draw:g} × min(cap {script.cap:g}, base {script.base:g} × 2^{retry})"
                )
            retry += 1
    if len(log) > len(expected):
        extra = log[len(expected)]
        if error is not None and not isinstance(error, RETRYABLE):
            return (
                f"connect() raised {described(error)}, which is no connection error (a bug, a "
                f"bad URL: trying again cannot help), and you "
                + ("tried again" if extra == CONNECT else f"waited {waited(extra)}")
                + ": raise it at once"
            )
        if extra == CONNECT:
            limit = f" (attempts={script.attempts})" if error is not None else ""
            return (
                f"you called connect() {times(tries)}, not {times(expected.count(CONNECT))}{limit}"
            )
        after = "the last failure" if error is not None else "connecting"
        return f"you waited {waited(extra)} after {after}: return (or raise) at once"
    if len(log) < len(expected):
        return f"you tried {times(tries)}, not {times(expected.count(CONNECT))}"
    return None


def fault(script: Script, run: Run, values: bool = True) -> str | None:
    """What ``run`` did wrong, for the script; None if nothing. ``values``: compare the waits."""
    if run.stopped:
        tries = run.log.count(CONNECT)
        return (
            f"with attempts={script.attempts}, connect() was called {times(tries)} and "
            f"sleep() {times(len(run.log) - tries)} before the check stopped it: give up after "
            "attempts failures"
        )
    _, error = model(script)
    wrong = log_fault(script, run.log, values)
    if wrong is not None:
        ended = f"you raised {described(run.raised)}" if run.raised is not None else "returned"
        return f"{wrong} ({ended})" if wrong.startswith("you tried") else wrong
    if error is None:
        if run.raised is not None:
            return f"connect() succeeded, yet you raised {described(run.raised)}"
        if isinstance(run.returned, NotTheConnection):
            return f"you returned {shown(run.returned.value)}, not what connect() returned"
        return None
    if run.raised is error:
        return None
    if run.raised is None:
        got = run.returned.value if isinstance(run.returned, NotTheConnection) else run.returned
        return f"you returned {shown(got)} instead of raising {described(error)}"
    return (
        f"you raised {described(run.raised)}, not the error connect() raised last "
        f"({described(error)}) itself: re-raise it with a bare `raise`"
    )


async def follows(
    h: Harness, reconnect: Any, scripts: list[Script], values: bool = True, why: str = ""
) -> None:
    """Run every script in one of the learner's threads; fail at the first run gone wrong."""

    async def all_of_them() -> list[Run]:
        return [await run_script(reconnect, script) for script in scripts]

    runs = await h.call(all_of_them)
    for script, run in zip(scripts, runs, strict=True):
        wrong = fault(script, run, values)
        if wrong is not None:
            raise CheckFailed(f"with {script.told()}: {wrong}{why}")


def refusals(count: int) -> tuple[Exception, ...]:
    return tuple(ConnectionRefusedError(111, f"Connection refused ({n})") for n in range(count))


def draws(rng: random.Random, count: int) -> tuple[float, ...]:
    """Jitter draws away from 0 and 1, where some wrong rules agree with the right one."""
    return tuple(round(rng.uniform(0.05, 0.95), 3) for _ in range(count))


@retrying.check("returns what connect() returns, at once, without waiting")
async def _connects_at_once(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.05, 0.5), 3)
    scripts = [Script(base, base * 40, attempts, ()) for attempts in (1, rng.randint(2, 8))]
    await follows(h, reconnect, scripts)


@retrying.check("tries at once, then waits before each retry until connect() succeeds")
async def _retries(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.05, 0.5), 3)
    failures = rng.randint(2, 5)
    script = Script(base, base * 100, failures + rng.randint(1, 3), refusals(failures))
    await follows(h, reconnect, [script], values=False)


@retrying.check("retry n waits rng() × base·2ⁿ while that is under the cap: base·2⁰ first")
async def _exponential(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.01, 0.5), 3)
    failures = rng.randint(4, 6)
    script = Script(base, base * 2**10, failures + 1, refusals(failures), draws(rng, failures))
    await follows(h, reconnect, [script])


@retrying.check("full jitter: a wait is anywhere from 0 to the whole bound")
async def _full_jitter(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.05, 0.5), 3)
    ends = (0.0, 0.999, 0.001, 0.0, 0.5)
    script = Script(base, base * 2**10, 6, refusals(5), ends)
    why = " (full jitter draws the whole wait: rng() × bound, from 0 up)"
    await follows(h, reconnect, [script], why=why)


@retrying.check("the cap bounds every wait, even at retry 2000")
async def _capped(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.05, 0.5), 3)
    cap = round(base * rng.uniform(5, 60), 3)
    scripts = [
        Script(base, cap, 2001, refusals(2000), draws(rng, 7)),
        Script(cap, base, 5, refusals(4), draws(rng, 4)),  # a cap under base: every wait capped
    ]
    await follows(h, reconnect, scripts)


CONNECTION_ERRORS: tuple[Callable[[], Exception], ...] = (
    lambda: ConnectionRefusedError(111, "Connection refused"),
    lambda: ConnectionResetError(104, "Connection reset by peer"),
    lambda: TimeoutError("timed out during opening handshake"),
    lambda: InvalidMessage("did not receive a valid HTTP response"),
)
"""Each makes a fresh error of a kind ``connect()`` raises when the server is not there (yet)."""


def random_script(rng: random.Random) -> Script:
    """A script of any base, cap, attempts and draws, connection errors of every kind."""

    def seconds() -> float:
        return float(f"{rng.choice((rng.uniform(0.001, 1), rng.uniform(1, 30))):.3g}")

    failures = tuple(rng.choice(CONNECTION_ERRORS)() for _ in range(rng.randint(0, 14)))
    draws = tuple(rng.choice((0.0, round(rng.random(), 3))) for _ in range(rng.randint(1, 6)))
    return Script(seconds(), seconds(), rng.randint(1, 12), failures, draws)


@retrying.check("follows the rule for any base, cap, attempts and draws (300 drawn scripts)")
async def _any_script(h: Harness, reconnect: Any) -> None:
    rng = seeded("03.3 any script")
    scripts = [random_script(rng) for _ in range(300)]
    # The fewest tries first: the first one gone wrong makes the shortest hint.
    scripts.sort(key=lambda s: (min(s.attempts, len(s.failures) + 1), len(s.draws)))
    await follows(h, reconnect, scripts)


@retrying.check("after attempts failures, raises the last error itself, with no wait after it")
async def _gives_up(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.05, 0.5), 3)
    attempts = rng.randint(2, 5)
    scripts = [
        Script(base, base * 100, 1, refusals(1)),
        Script(base, base * 100, attempts, refusals(attempts + rng.randint(1, 3))),
    ]
    await follows(h, reconnect, scripts)


@retrying.check("retries connection errors only: any other error is raised at once")
async def _connection_errors(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.05, 0.5), 3)
    kinds: tuple[Exception, ...] = (
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("timed out during opening handshake"),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        InvalidMessage("did not receive a valid HTTP response"),
    )
    bug = rng.choice(
        [ValueError("a bug in connect()"), InvalidURI("ws//127.0.0.1", "scheme isn't ws or wss")]
    )
    scripts = [
        Script(base, base * 100, 6, kinds),
        Script(base, base * 100, 6, (*refusals(1), bug)),
        Script(base, base * 100, 6, (KeyError("url"),)),
    ]
    await follows(h, reconnect, scripts)


@retrying.check("reconnects to a real server that answers its first handshakes with HTTP 503")
async def _real_server(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    refused = rng.randint(1, 4)
    greeting = f"welcome {rng.randint(1000, 9999)}"
    handshakes: list[WebSocket] = []

    async def starting(websocket: WebSocket) -> None:
        handshakes.append(websocket)
        if len(handshakes) <= refused:
            await websocket.send_denial_response(PlainTextResponse("starting", status_code=503))
            return
        await websocket.accept()
        await websocket.send_text(greeting)
        with contextlib.suppress(WebSocketDisconnect):
            await websocket.receive_text()

    h.websocket("/starting", starting)
    server = await h.serve()
    base = round(rng.uniform(0.05, 0.5), 3)
    failures = tuple(
        InvalidStatus(Response(503, "Service Unavailable", Headers())) for _ in range(refused)
    )
    script = Script(base, base * 100, refused + 3, failures, draws(rng, refused))

    async def scenario() -> tuple[list[object], object, object]:
        """Reconnect, then read the greeting on what came back (in the learner's thread)."""
        log: list[object] = []

        async def connect() -> ClientConnection:
            return await dial(server.ws("/starting"))

        try:
            got = await call_reconnect(reconnect, script, connect, log)
        except NotImplementedError:
            raise
        except (Exception, Stop) as exc:
            return log, exc, None
        if not isinstance(got, ClientConnection):
            return log, NotTheConnection(got), None
        async with got:
            try:
                return log, got, await asyncio.wait_for(got.recv(), WAIT)
            except (TimeoutError, ConnectionClosed) as exc:
                return log, got, exc

    log, got, heard = await h.call(scenario)
    first = "first handshake" if refused == 1 else f"first {refused} handshakes"
    said = f"the server answered your {first} with HTTP 503"
    wrong = log_fault(script, log)
    if isinstance(got, BaseException):
        why = "you kept trying" if isinstance(got, Stop) else f"you raised {described(got)}"
        raise CheckFailed(f"{said}: {wrong or why}" + (f" ({why})" if wrong else ""))
    expect(wrong is None, f"{said}: {wrong}")
    if isinstance(got, NotTheConnection):
        raise CheckFailed(f"{said}, then accepted; you returned {shown(got.value)}")
    expect(
        len(handshakes) == refused + 1,
        f"{said}; it saw {len(handshakes)} handshakes, not {refused + 1}",
    )
    expect(
        heard == greeting,
        f"{said}, then accepted and sent {greeting!r}; the connection you returned "
        f"received {shown(heard)}",
    )


@retrying.check("without sleep=, it waits with asyncio.sleep: other tasks run meanwhile")
async def _really_waits(h: Harness, reconnect: Any) -> None:
    rng = random.Random()
    base = round(rng.uniform(0.01, 0.02), 4)
    failures = 3
    script = Script(base, base * 100, failures + 1, refusals(failures), draws(rng, failures))

    async def scenario() -> tuple[list[tuple[float, int]], object]:
        """Stamp each connect() with the time and a ticker's count (in the learner's thread)."""
        loop = asyncio.get_running_loop()
        ticks = 0
        stamps: list[tuple[float, int]] = []

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)  # a turn whenever the loop is free: any real wait gives one
                ticks += 1

        async def connect() -> Connection:
            stamps.append((loop.time(), ticks))
            if len(stamps) <= failures:
                raise script.failures[len(stamps) - 1]
            return Connection()

        task = loop.create_task(ticker())
        try:
            return stamps, await call_reconnect(reconnect, script, connect, [], fake_sleep=False)
        except NotImplementedError:
            raise
        except (Exception, Stop) as exc:
            return stamps, exc
        finally:
            task.cancel()

    stamps, got = await h.call(scenario)
    told = f"with {script.told()} and no sleep= argument"
    if isinstance(got, BaseException) or len(stamps) != failures + 1:
        ended = f"you raised {described(got)}" if isinstance(got, Exception) else "returned"
        tried = f"you tried {times(len(stamps))}, not {times(failures + 1)}"
        raise CheckFailed(f"{told}: {tried} ({ended})")
    for n in range(failures):
        (before, ticks_before), (after, ticks_after) = stamps[n], stamps[n + 1]
        wait = script.draws[n] * bound(script, n)
        expect(
            ticks_after > ticks_before,
            f"{told}: while you waited before retry {n}, no other task ran: await sleep(...), "
            "asyncio.sleep by default (time.sleep blocks the event loop)",
        )
        expect(
            after - before >= wait - 0.002,
            f"{told}: retry {n} came {after - before:.4f} s after the try before it, not "
            f"{waited(wait)}: await sleep(delay)",
        )
