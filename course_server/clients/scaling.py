"""Lesson 07's client side: chat clients, a raw pub/sub listener and a latency meter.

The lesson (and its tests) drive several server processes with these: ``chatter`` joins a room
on one server; ``Listener`` is a bare Redis pub/sub subscriber, to watch pub/sub drop what is
published while it is away; ``latency`` times messages from a sender on one server to a
receiver on another (or the same) at a fixed rate. Every read is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import redis.asyncio as redis
from websockets.asyncio.client import ClientConnection, connect

from course_server.lab import stats

Frame = dict[str, Any]


class Server(Protocol):
    """Anything with a ``ws(path)`` URL builder: a ``RunningServer`` or a ``ServerProcess``."""

    def ws(self, path: str) -> str: ...


class Chatter:
    """One chat connection: JSON frames out, parsed frames in, ``last_id`` kept for a resume."""

    def __init__(self, websocket: ClientConnection, name: str) -> None:
        self.websocket, self.name = websocket, name
        self.history: list[Frame] = []  # what came before and with its own join
        self.missed: list[Frame] = []  # what came while ``send_until_acked`` waited
        self.last_id = 0

    async def say(self, content: str, **extra: Any) -> None:
        await self.websocket.send(json.dumps({"type": "message", "content": content, **extra}))

    async def recv(self, timeout: float = 5.0) -> Frame:
        async with asyncio.timeout(timeout):
            frame: Frame = json.loads(await self.websocket.recv())
        if frame["type"] in {"message", "join", "leave"}:
            self.last_id = max(self.last_id, frame["id"])
        return frame

    async def until(self, kind: str, timeout: float = 5.0, **fields: Any) -> list[Frame]:
        """Frames up to and including the first of type ``kind`` with these ``fields``."""
        frames = [await self.recv(timeout)]
        while not (
            frames[-1]["type"] == kind and all(frames[-1].get(k) == v for k, v in fields.items())
        ):
            frames.append(await self.recv(timeout))
        return frames

    async def close(self) -> None:
        await self.websocket.close()

    async def send_until_acked(self, content: str, key: str, deadline: float = 10.0) -> Frame:
        """Send; after each ``unavailable`` error, back off and resend (same ``key``); the ack.

        What a client does while the server cannot reach Redis: with the same ``client_msg_id``
        a resend is never recorded twice. Frames that come meanwhile are kept in ``missed``.
        """
        give_up = time.monotonic() + deadline
        pause = 0.05
        while True:
            await self.say(content, client_msg_id=key)
            while (frame := await self.recv())["type"] != "error":
                if frame == {"type": "ack", "client_msg_id": key, "id": frame.get("id")}:
                    return frame
                self.missed.append(frame)
            if frame["code"] != "unavailable" or time.monotonic() > give_up:
                raise RuntimeError(f"not acked: {frame}")
            await asyncio.sleep(pause)  # the client's backoff
            pause = min(2 * pause, 1.0)


async def join(
    server: Server, room: str, name: str, last_id: int | None = None, timeout: float = 5.0
) -> Chatter:
    """Join ``room`` as ``name`` (resuming after ``last_id``); ready once its own join is read.

    Its ``history`` holds what came up to and including its own join: the resume frame and the
    missed events, or the room's history. ``await client.close()`` when done.
    """
    query = "" if last_id is None else f"?last_id={last_id}"
    # max_queue=None: a client that reads nothing for a while (a sender) must still be able to
    # close; with a bounded queue it stops reading the socket and never sees the close frame.
    websocket = await connect(server.ws(f"/chat/{room}/{name}{query}"), max_queue=None)
    client = Chatter(websocket, name)
    try:
        client.history = await client.until("join", timeout, username=name)
    except BaseException:
        await websocket.close()
        raise
    return client


@asynccontextmanager
async def chatter(
    server: Server, room: str, name: str, last_id: int | None = None, timeout: float = 5.0
) -> AsyncIterator[Chatter]:
    """``join()`` as a context manager: closed at the end of the block."""
    client = await join(server, room, name, last_id, timeout)
    try:
        yield client
    finally:
        await client.close()


def lines(frames: list[Frame]) -> list[str]:
    """Frames as short lines a person can read (ids, names, contents)."""
    shown = []
    for f in frames:
        if f["type"] in {"message", "join", "leave"}:
            shown.append(f"{f['id']:>3} {f['type']:<7} {f['username']}: {f['content']}")
        else:
            shown.append("    " + " ".join(f"{k}={v}" for k, v in f.items()))
    return shown


class Listener:
    """A bare Redis pub/sub subscriber: what a server does, minus everything that makes it safe."""

    def __init__(self, url: str, channel: str) -> None:
        self.url, self.channel = url, channel
        self._client: redis.Redis | None = None
        self._pubsub: Any = None

    async def connect(self) -> None:
        self._client = redis.Redis.from_url(self.url, decode_responses=True)
        self._pubsub = self._client.pubsub()
        await self._pubsub.subscribe(self.channel)
        await self._pubsub.get_message(timeout=5.0)  # Redis' confirmation: subscribed from now on

    async def disconnect(self) -> None:
        await self._pubsub.aclose()
        await self._client.aclose()  # type: ignore[union-attr]  # set by connect(), called first

    async def drain(self, timeout: float = 0.2) -> list[int]:
        """The ids of the events published to the channel since the last drain."""
        ids = []
        while message := await self._pubsub.get_message(timeout=timeout):
            if message["type"] == "message":
                ids.append(json.loads(message["data"])["id"])
        return ids


async def latency(
    sender: Server, receiver: Server, room: str, *, count: int = 200, rate: float = 500.0
) -> list[float]:
    """Seconds from send to receipt for ``count`` messages sent at ``rate`` per second.

    The sender and the receiver are separate connections, to ``sender`` and ``receiver``; the
    servers need ``COURSE_RATE_LIMIT=0`` for rates above the default limit.
    """
    async with chatter(receiver, room, "receiver") as inbox, chatter(sender, room, "sender") as out:
        await inbox.until("join", username="sender")
        sent: dict[str, float] = {}
        delays: list[float] = []

        async def receive() -> None:
            while len(delays) < count:
                frame = await inbox.recv()
                if frame["type"] == "message" and frame["content"] in sent:
                    delays.append(time.perf_counter() - sent[frame["content"]])

        reader = asyncio.create_task(receive())
        start = time.perf_counter()
        for n in range(count):
            # Paced to the schedule: a slow send does not shift every later one.
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            sent[f"m{n}"] = time.perf_counter()
            await out.say(f"m{n}")
        await reader
    return delays


def percentiles(delays: list[float]) -> dict[str, float]:
    """p50, p90 and p99 in milliseconds (nearest rank, ``lab.stats``)."""
    cuts = stats.percentiles(delays, (50, 90, 99))
    return {f"p{p}": 1000 * cut for p, cut in cuts.items()}
