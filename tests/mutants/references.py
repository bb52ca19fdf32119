"""Cheats: answers that lean on the course's own implementation of the exercise (see ``mutants``).

Each is, wraps, inherits or calls a reference its exercise names (``exercise(...,
references=...)``). Some would pass every behaviour check if they were allowed; the checks must
refuse each with "the course's own ...", whatever it answers. 02.1 and 02.2 have no reference
in the course, so no cheat here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import ServerSentEvent
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from course_server.clients import sse as sse_client
from course_server.lab import compare
from course_server.lessons import events, feed, lobby
from course_server.realtime import names, ratelimit, roomlog
from course_server.realtime.backoff import Backoff
from course_server.realtime.fanout import Peer
from course_server.scaling import feed as redis_feed
from course_server.scaling import intake as redis_intake
from course_server.security import secure
from course_server.seed import heartbeat, naive
from mutants.registry import mutant

CHEAT = "cheat: calls the course's reference"

# --- lesson 01 -------------------------------------------------------------------------------


@mutant("01.1", f"{CHEAT} feed.poll")
async def long_poll_by_short_poll(request: Request, after: int = 0, wait: float = 5.0) -> feed.Poll:
    return await feed.poll(request.app.state.feed, after)


@mutant("01.2", f"{CHEAT} compare.websocket_client")
async def collect_with_the_course_client(url: str, count: int) -> list[dict[str, Any]]:
    compare.websocket_client(compression=None)  # tried first; its URL is the course's own
    events_: list[dict[str, Any]] = []
    while len(events_) < count:
        after = events_[-1]["id"] if events_ else 0
        async with connect(f"{url}?after={after}") as websocket:
            async for message in websocket:
                events_.append(json.loads(message))
                if len(events_) == count:
                    break
    return events_


# --- lesson 03 -------------------------------------------------------------------------------


@mutant("03.1", f"{CHEAT} naive.ConnectionManager (inherited)")
class HubOnTheNaiveManager(naive.ConnectionManager):
    @property
    def connections(self) -> list[WebSocket]:
        return self.active_connections

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.active_connections:
            self.active_connections.remove(websocket)

    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        try:
            await super().broadcast_except(message, exclude)
        except (WebSocketDisconnect, RuntimeError):
            pass


@mutant("03.2", f"{CHEAT} fanout.Peer")
class OutboxOnAPeer:
    def __init__(self, websocket: WebSocket, size: int = 8) -> None:
        self.websocket = websocket
        self.peer = Peer(websocket, queue_size=size)
        self.closing: asyncio.Task[None] | None = None

    def send(self, message: str) -> bool:
        return self.peer.send(message)

    async def drain(self) -> None:
        self.peer.start()
        await self.peer.wait_closed()


@mutant("03.3", f"{CHEAT} backoff.Backoff")
async def reconnect_with_the_courses_backoff(
    connect: Callable[[], Awaitable[Any]],
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Any:
    backoff = Backoff(base=base, cap=cap)
    for n in range(attempts):
        try:
            return await connect()
        except (OSError, InvalidHandshake):
            if n == attempts - 1:
                raise
        await sleep(backoff.delay(n, rng))
    return None


# --- lesson 04 -------------------------------------------------------------------------------


@mutant("04.1", f"{CHEAT} roomlog.MemoryLog")
def catch_up_from_a_memory_log(
    history: deque[dict[str, Any]], last_id: int
) -> tuple[bool, list[dict[str, Any]]]:
    log = roomlog.MemoryLog(len(history) or 1, first_id=history[0]["id"] if history else 1)
    log.recent()  # the course's log, kept for the resume frame later
    missed = [message for message in history if message["id"] > last_id]
    complete = not history or last_id >= history[0]["id"] - 1
    return complete, missed


@mutant("04.2", f"{CHEAT} ratelimit.TokenBucket")
class TokenBucketAroundTheCourses:
    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.inner = ratelimit.TokenBucket(rate, burst, clock=clock)

    def allow(self) -> bool:
        return self.inner.allow()


# --- lesson 05 -------------------------------------------------------------------------------


@mutant("05.1", f"{CHEAT} lobby.RoomManager")
class LobbyAroundTheCourses:
    def __init__(self) -> None:
        self.manager = lobby.RoomManager()

    @property
    def rooms(self) -> dict[str, set[Any]]:
        return {name: set(room.group) for name, room in self.manager.rooms.items()}

    def join(self, member: Any, room: str) -> None:
        self.manager.join(member, room)

    def leave(self, member: Any) -> None:
        self.manager.leave(member)

    def say(self, member: Any, content: str) -> None:
        self.manager.say(member, content)


# --- lesson 06 -------------------------------------------------------------------------------


@mutant("06.1", f"{CHEAT} secure.authenticate_first_message")
async def first_message_auth_by_the_course(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await secure.authenticate_first_message(websocket)


# --- lesson 07 -------------------------------------------------------------------------------

HISTORY = 20


def room_keys(room: str) -> tuple[str, str, str]:
    return f"room:{room}:seq", f"room:{room}:log", f"room:{room}"


@mutant("07.1", f"{CHEAT} redis_feed.RedisFeed")
async def publish_through_the_course_feed(redis: Redis, room: str, text: str) -> int:
    if isinstance(redis, redis_feed.RedisFeed):  # the course's own publisher, when handed one
        return (await redis.publish(text)).id
    script = """
    local id = redis.call('INCR', KEYS[1])
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, 'text', ARGV[1])
    redis.call('PUBLISH', KEYS[3], cjson.encode({id = id, text = ARGV[1]}))
    return id
    """
    return await redis.eval(script, 3, *room_keys(room), text, HISTORY)


@mutant("07.2", f"{CHEAT} redis_intake.Intake")
async def follow_with_the_course_intake(
    redis: Redis, room: str, last_id: int
) -> AsyncIterator[dict[str, Any]]:
    _, log, channel = room_keys(room)
    await redis_intake.Intake(redis, {}).on_subscribed(channel)  # no room of ours: a no-op
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=5)
        for entry, fields in await redis.xrange(log, min=f"(0-{last_id}", max="+"):
            last_id = int(entry[2:])
            yield {"id": last_id, "text": fields["text"]}
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None and (event := json.loads(message["data"]))["id"] > last_id:
                last_id = event["id"]
                yield event


# --- lesson 08 -------------------------------------------------------------------------------


@mutant("08.1", f"{CHEAT} events._paced")
async def squares_paced_by_the_course(
    last_event_id: Annotated[int | None, Header()] = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    first = (last_event_id or 0) + 1
    async for n in events._paced(last_event_id, 0, max(0, count - first + 1)):
        data = {"n": n, "square": n * n}
        yield ServerSentEvent(
            id=str(n), event="square", data=data, retry=2000 if n == first else None
        )


@mutant("08.2", f"{CHEAT} sse_client.parse")
def parse_events_by_the_course(lines: list[str]) -> list[dict[str, str]]:
    return [
        {"event": e.event, "data": e.data, "id": e.id or ""}
        for e in sse_client.parse(lines)
        if e.comment is None
    ]


# --- lesson 09 -------------------------------------------------------------------------------


@mutant("09.1", f"{CHEAT} heartbeat.websocket_with_heartbeat")
async def watchdog_by_the_course(websocket: WebSocket) -> None:
    await heartbeat.websocket_with_heartbeat(websocket, interval=0.5)


@mutant("09.2", f"{CHEAT} names.name_problem")
def name_problem_by_the_course(name: str) -> str | None:
    return names.name_problem("username", name)
