"""Checks for lesson 03's exercises: a broadcast that prunes the dead, and a queue per connection.

The checks own the endpoints; the learner's class is what they call. A "ghost" is a connection
whose client is gone but which is still in the hub, as when an endpoint ends without calling
``disconnect`` (deterministic, unlike racing a real disconnect). A stalled client is
``misbehave.stalled_reader``: a raw socket with a tiny receive buffer that reads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
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

    h.websocket("/hub", talk)
    h.websocket("/ghost", ghost)
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


@hub.check("a dead connection (its client gone) is pruned; the others still get the message")
async def _prune(h: Harness, hub_class: Any) -> None:
    room = serve_hub(h, hub_class)
    server = await h.serve()
    async with contextlib.AsyncExitStack() as stack:
        async with dial(server.ws("/ghost")):
            await wait_for_members(h, room, 1)  # the ghost first: a broadcast meets it first
        await asyncio.to_thread(room.ended.wait, WAIT)
        bob = await join(h, room, server, stack, "/hub", 2)
        carol = await join(h, room, server, stack, "/hub", 3)
        alice = await join(h, room, server, stack, "/hub", 4)
        why = ": did the broadcast stop at, or skip past, the dead connection?"
        for saying in ("hi", "still here"):
            await alice.send(saying)
            await hears(h, bob, "bob", saying, why)
            await hears(h, carol, "carol", saying, why)
        # Alice's endpoint reads her next message only after the first broadcast is over.
        left = len(await room.members(h))
        expect(left == 3, f"after the broadcast, hub.connections held {left}: prune the dead one")


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
