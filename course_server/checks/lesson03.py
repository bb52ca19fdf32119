"""Checks for lesson 03's exercises: a broadcast that prunes the dead, and a queue per connection.

The checks own the endpoints; the learner's class is what they call. A "ghost" is a connection
whose client is gone but which is still in the hub, as when an endpoint ends without calling
``disconnect`` (deterministic, unlike racing a real disconnect). A stalled client is
``misbehave.stalled_reader``: a raw socket with a tiny receive buffer that reads nothing.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from course_server import misbehave
from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.checks.talk import WAIT, dial, receive
from course_server.waiting import eventually

# --- 03.1 broadcast_except, pruning the dead -------------------------------------------------

hub = exercise(
    "03.1",
    "Broadcast to everyone else, pruning the dead",
    target="Hub",
    references=("course_server.naive:ConnectionManager", "course_server.fanout:Group"),
)


def serve_hub(h: Harness, hub_class: Any) -> tuple[Any, threading.Event]:
    """Mount ``/hub`` (talk: each text goes to the others) and ``/ghost`` on one hub."""
    room = hub_class()
    ghost_gone = threading.Event()

    async def talk(websocket: WebSocket) -> None:
        await room.connect(websocket)
        try:
            while True:
                text = await websocket.receive_text()
                await room.broadcast_except(f"Someone said: {text}", websocket)
        finally:
            room.disconnect(websocket)

    async def ghost(websocket: WebSocket) -> None:
        await room.connect(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass  # and no disconnect(): the hub still lists this dead connection
        finally:
            ghost_gone.set()

    h.websocket("/hub", talk)
    h.websocket("/ghost", ghost)
    return room, ghost_gone


async def wait_for_members(h: Harness, room: Any, count: int) -> None:
    async def joined() -> bool:
        return len(await h.on_server(lambda: list(room.connections))) == count

    try:
        await eventually(joined, timeout=WAIT)
    except TimeoutError:
        raise CheckFailed(f"hub.connections never held the {count} connected clients") from None


@hub.check("everyone but the sender gets the message")
async def _others(h: Harness, hub_class: Any) -> None:
    room, _ = serve_hub(h, hub_class)
    server = await h.serve()
    async with (
        dial(server.ws("/hub")) as alice,
        dial(server.ws("/hub")) as bob,
        dial(server.ws("/hub")) as carol,
    ):
        await wait_for_members(h, room, 3)
        await alice.send("hi")
        for name, client in (("bob", bob), ("carol", carol)):
            got = await receive(client, name, harness=h)
            expect(got == "Someone said: hi", f"{name} received {got!r} after alice said hi")
        await bob.send("yo")
        got = await receive(alice, "alice", harness=h)
        expect(got == "Someone said: yo", f"alice got {got!r} first: her own message came back")


@hub.check("a dead connection is pruned, and the others still get the message")
async def _prune(h: Harness, hub_class: Any) -> None:
    room, ghost_gone = serve_hub(h, hub_class)
    server = await h.serve()
    async with dial(server.ws("/ghost")):
        await wait_for_members(h, room, 1)  # the ghost first, so a broadcast meets it first
    await asyncio.to_thread(ghost_gone.wait, WAIT)
    async with dial(server.ws("/hub")) as alice, dial(server.ws("/hub")) as bob:
        await wait_for_members(h, room, 3)
        await alice.send("hi")
        try:
            got = await receive(bob, "bob", harness=h)
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}: did the broadcast stop at the dead connection?") from None
        expect(got == "Someone said: hi", f"bob received {got!r}")
        await alice.send("still here")
        got = await receive(bob, "bob", harness=h)
        expect(got == "Someone said: still here", "alice's endpoint broke on the dead connection")
        # Alice's endpoint reads her next message only after the first broadcast is over.
        left = len(await h.on_server(lambda: list(room.connections)))
        expect(left == 2, f"after the broadcast, hub.connections held {left}: prune the dead one")


# --- 03.2 a queue and a writer per connection ------------------------------------------------

outbox = exercise(
    "03.2",
    "A queue and a writer per connection",
    target="Outbox",
    references=("course_server.fanout:Peer",),
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


@outbox.check("send() queues without waiting; the writer sends in order")
async def _in_order(h: Harness, outbox_class: Any) -> None:
    boxes = serve_outboxes(h, outbox_class)
    server = await h.serve()
    async with dial(server.ws("/fan")) as client:
        await wait_for_boxes(boxes, 1)
        queued = await h.on_server(lambda: [boxes[0].send(f"m{i}") for i in range(QUEUE_SIZE)])
        expect(queued == [True] * QUEUE_SIZE, f"send() returned {queued} for {QUEUE_SIZE} messages")
        got = [await receive(client, "the client") for _ in range(QUEUE_SIZE)]
        expected = [f"m{i}" for i in range(QUEUE_SIZE)]
        expect(got == expected, f"the client received {got}")


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
        resumed.close_code == 4008,
        f"the stalled client, {sent} messages later: {resumed}; cut it off with 4008 when its "
        "queue is full",
    )
    expect(later is False, f"send() after the cut-off returned {later!r}, not False")
