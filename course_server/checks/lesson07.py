"""Checks for lesson 07's exercises: publishing through Redis from many processes, and following.

A "process" is a Redis client of its own (``redis_tools`` has the server, the layout and the
clients). Two of them share this Python process, so a counter in Python memory would look
shared; a check starts a room at an id another process left it at to catch that. Races are made
deterministic: ``Paused`` stops a publisher between two of its commands while another publishes,
and ``Hooked`` publishes right after a follower has read the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import WebSocket
from redis.asyncio import Redis

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness, LearnerError
from course_server.checks.redis_tools import (
    HISTORY,
    Hooked,
    Paused,
    client,
    heard,
    keys,
    listening,
    record,
    stream,
    throwaway_redis,
)
from course_server.checks.talk import dial, receive
from course_server.waiting import eventually


async def as_learner(h: Harness, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``h.call(fn, *args)``; if the learner's code raised, say what it was doing."""
    try:
        return await h.call(fn, *args)
    except LearnerError as exc:
        if isinstance(exc.error, NotImplementedError):
            raise
        raise CheckFailed(what) from None  # the verdict adds what the code raised


# --- 07.1 publish --------------------------------------------------------------------------

publishing = exercise(
    "07.1",
    "Publish from any process: one id, one order",
    target="publish",
    references=("course_server.redis_feed:RedisFeed",),
)


async def publish_all(url: str, publish: Any, calls: list[tuple[str, str]]) -> list[Any]:
    """Run in the learner's thread: ``publish`` each (room, text) in turn on a client of its own."""
    async with client(url) as redis:
        return [await publish(redis, room, text) for room, text in calls]


@publishing.check("ids 1, 2, 3: each event kept in the room's stream and published")
async def _basics(h: Harness, publish: Any) -> None:
    async with throwaway_redis() as url, listening(url, "room:lobby") as channel:
        texts = ["hello", "how are you?", "bye"]
        calls = [("lobby", text) for text in texts]
        ids = await as_learner(h, "publish() in a new room", publish_all, url, publish, calls)
        expect(ids == [1, 2, 3], f"three publish() calls in a new room returned {ids}")
        kept = await stream(url, "lobby")
        expected = [(f"0-{n}", text) for n, text in enumerate(texts, 1)]
        expect(kept == expected, f"room:lobby:log holds {kept}, not {expected}")
        got = await heard(channel)
        sent = [{"id": n, "text": text} for n, text in enumerate(texts, 1)]
        expect(got == sent, f"room:lobby's subscribers got {got}, not {sent}")


@publishing.check("ids go on from the room's last id, whoever published it; each room counts")
async def _counter_in_redis(h: Harness, publish: Any) -> None:
    async with throwaway_redis() as url:
        async with client(url) as other:
            await record(other, "lobby", *(f"event {n}" for n in range(1, 42)))
        calls = [("lobby", "hi"), ("kitchen", "first")]
        what = "another process had published 41 events in lobby, then publish() was called"
        ids = await as_learner(h, what, publish_all, url, publish, calls)
        expect(
            ids == [42, 1],
            f"another process had published 41 events in lobby; then publish() returned {ids} "
            "for one more in lobby and a first one in kitchen, not [42, 1]: keep the counter in "
            "Redis, one per room",
        )


async def paused_mid_publish(url: str, publish: Any) -> tuple[Any, Any]:
    """Run in the learner's thread: A publishes, paused after one command; B publishes; A goes on.

    Returns A's id (or what A's publish raised) and B's id.
    """
    async with Paused.from_url(url, decode_responses=True) as a, client(url) as b:
        first = asyncio.ensure_future(publish(a, "lobby", "from A"))
        pause = asyncio.ensure_future(a.paused.wait())
        await asyncio.wait({first, pause}, return_when=asyncio.FIRST_COMPLETED)
        pause.cancel()
        try:
            second = await publish(b, "lobby", "from B")
        finally:
            a.resume.set()
            (outcome,) = await asyncio.gather(first, return_exceptions=True)
        if isinstance(outcome, NotImplementedError):
            raise outcome
        return outcome, second  # what A raised, if it did, is the point of the check


@publishing.check("a process paused mid-publish cannot break the order: publish is one step")
async def _atomic(h: Harness, publish: Any) -> None:
    async with throwaway_redis() as url, listening(url, "room:lobby") as channel:
        what = "two processes publishing at once"
        a, b = await as_learner(h, what, paused_mid_publish, url, publish)
        story = "process A stopped after its first Redis command, process B published meanwhile"
        expect(
            not isinstance(a, Exception),
            f"{story}, then A's publish() raised {type(a).__name__}: {a}. Make 'next id, keep, "
            "publish' one step: a Lua script (redis.eval)",
        )
        expect([a, b] in ([1, 2], [2, 1]), f"{story}: A got id {a}, B got id {b}")
        kept = await stream(url, "lobby")
        texts = {a: "from A", b: "from B"}
        expected = [("0-1", texts[1]), ("0-2", texts[2])]
        expect(kept == expected, f"{story}; A got id {a}, and the stream holds {kept}")
        got = await heard(channel)
        sent = [{"id": 1, "text": texts[1]}, {"id": 2, "text": texts[2]}]
        expect(got == sent, f"{story}; A got id {a}, and subscribers got {got}, not {sent}")


def span(entries: list[str]) -> str:
    return f"{len(entries)} entries ({entries[0]} to {entries[-1]})" if entries else "nothing"


@publishing.check(f"the stream keeps the last {HISTORY} events, no more")
async def _bounded(h: Harness, publish: Any) -> None:
    async with throwaway_redis() as url:
        calls = [("lobby", f"event {n}") for n in range(1, HISTORY + 6)]
        await as_learner(h, f"{len(calls)} publish() calls", publish_all, url, publish, calls)
        kept = [entry for entry, _ in await stream(url, "lobby")]
        expected = [f"0-{n}" for n in range(6, HISTORY + 6)]
        expect(
            kept == expected,
            f"after {len(calls)} events the stream holds {span(kept)}, not {HISTORY} entries "
            f"(0-6 to 0-{HISTORY + 5}): trim it to exactly {HISTORY} (MAXLEN, without ~)",
        )


# --- 07.2 follow ---------------------------------------------------------------------------

following = exercise(
    "07.2",
    "Follow a room: from the stream, then live, nothing lost",
    target="follow",
    references=("course_server.redis_intake:Intake",),
)

ROOM = "lobby"


async def serve_follow(
    h: Harness, follow: Any, url: str, hook: Callable[[Redis], Awaitable[None]] | None = None
) -> None:
    """``WS /follow?last_id=N``: each event ``follow`` yields, as JSON, until the client leaves."""
    if not inspect.isasyncgenfunction(follow):
        await h.call(follow, None, ROOM, 0)  # a stub, with no yield yet, raises here
        raise CheckFailed("follow must yield the events: an async generator (async def + yield)")

    async def forward(websocket: WebSocket, redis: Redis, last_id: int) -> None:
        async with contextlib.aclosing(follow(redis, ROOM, last_id)) as events:
            async for event in events:
                await websocket.send_json(event)
        await websocket.close(1000, "follow() returned")

    async def endpoint(websocket: WebSocket, last_id: int = 0) -> None:
        await websocket.accept()
        async with Hooked.from_url(url, decode_responses=True) as redis:
            redis.on_first_read = hook
            relay = asyncio.ensure_future(forward(websocket, redis, last_id))
            gone = asyncio.ensure_future(websocket.receive())  # the client leaving
            done: set[asyncio.Future[Any]] = set()
            try:
                done, _ = await asyncio.wait({relay, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                relay.cancel()
                with contextlib.suppress(BaseException):  # once the client left, it is moot
                    await relay
            if gone not in done and relay in done and not relay.cancelled():
                error = relay.exception()
                if error is not None:
                    raise error  # the harness records it and closes with 1011

    h.websocket("/follow", endpoint)
    await h.serve()


async def subscribed(url: str) -> None:
    """Wait until someone (the follower) is subscribed to the room's channel."""

    async def anyone() -> bool:
        async with client(url) as redis:
            return (await redis.pubsub_numsub(keys(ROOM)[2]))[0][1] > 0

    try:
        await eventually(anyone, timeout=2)
    except TimeoutError:
        raise CheckFailed(f"follow() never subscribed to {keys(ROOM)[2]}") from None


def events(*ids: int) -> list[dict[str, Any]]:
    return [{"id": n, "text": f"event {n}"} for n in ids]


def shown(sent: list[Any]) -> str:
    """Events as their ids where they are the check's own events, else as they came."""
    own = all(isinstance(e, dict) and [e] == events(e.get("id", 0)) for e in sent)
    return ", ".join(str(e["id"]) if own else repr(e) for e in sent) or "nothing"


async def expect_events(h: Harness, websocket: Any, ids: list[int], situation: str) -> None:
    """The follower sends exactly events ``ids`` next; else fail, saying what it sent instead."""
    sent: list[Any] = []
    for wanted in events(*ids):
        try:
            sent.append(json.loads(await receive(websocket, "the follower", harness=h)))
        except CheckFailed as exc:
            raise CheckFailed(f"{situation}: it sent {shown(sent)}, then {exc}") from None
        expect(sent[-1] == wanted, f"{situation}: it sent {shown(sent)}, not {shown(events(*ids))}")


@contextlib.asynccontextmanager
async def follower(
    h: Harness, follow: Any, published: int, last_id: int, hook: Any = None
) -> AsyncIterator[tuple[str, Redis, Any]]:
    """A Redis with events 1 to ``published``, ``follow`` served, and a client following it."""
    async with throwaway_redis() as url, client(url) as redis:
        await record(redis, ROOM, *(f"event {n}" for n in range(1, published + 1)))
        await serve_follow(h, follow, url, hook)
        assert h.server is not None
        async with dial(h.server.ws(f"/follow?last_id={last_id}")) as websocket:
            yield url, redis, websocket


@following.check("sends the events after last_id from the stream, then new ones as they come")
async def _backlog_then_live(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=5, last_id=2) as (url, redis, websocket):
        await expect_events(h, websocket, [3, 4, 5], "events 1 to 5 stored, a follower from 2")
        await subscribed(url)
        await record(redis, ROOM, "event 6", "event 7")
        await expect_events(h, websocket, [6, 7], "then events 6 and 7 published")


@following.check("a follower that has seen every event waits for the next one")
async def _up_to_date(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=3, last_id=3) as (url, redis, websocket):
        await subscribed(url)
        await record(redis, ROOM, "event 4")
        await expect_events(h, websocket, [4], "events 1 to 3 stored, a follower from 3, then 4")


@following.check("events that pub/sub dropped are read from the stream, in order")
async def _gap(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=3, last_id=1) as (url, redis, websocket):
        await expect_events(h, websocket, [2, 3], "events 1 to 3 stored, a follower from 1")
        await subscribed(url)
        await record(redis, ROOM, "event 4", "event 5", published=False)
        await record(redis, ROOM, "event 6")
        situation = (
            "events 4 and 5 went into the stream but pub/sub lost them, then 6 was published "
            "(when an id jumps, read the gap from the stream)"
        )
        await expect_events(h, websocket, [4, 5, 6], situation)
        await record(redis, ROOM, "event 7")
        await expect_events(h, websocket, [7], "after 4 to 6, event 7 was published")


@following.check("an event that comes twice is sent once")
async def _duplicate(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=3, last_id=0) as (url, redis, websocket):
        await expect_events(h, websocket, [1, 2, 3], "events 1 to 3 stored, a follower from 0")
        await subscribed(url)
        await redis.publish(keys(ROOM)[2], json.dumps(events(3)[0]))  # a process resending it
        await record(redis, ROOM, "event 4")
        await expect_events(h, websocket, [4], "event 3 came again by pub/sub, then 4")


async def publish_meanwhile(redis: Redis) -> None:
    await record(redis, ROOM, "event 3")


@following.check("an event published while the stream is read is not lost: subscribe first")
async def _subscribe_first(h: Harness, follow: Any) -> None:
    async with follower(h, follow, 2, last_id=0, hook=publish_meanwhile) as (_, _, websocket):
        situation = "events 1 and 2 stored, and 3 published just after follow() read the stream"
        await expect_events(h, websocket, [1, 2, 3], situation)
