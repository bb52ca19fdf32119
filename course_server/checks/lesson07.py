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
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import WebSocket
from redis.asyncio import Redis

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness, LearnerError, expect_equal, shown
from course_server.checks.redis_tools import (
    HISTORY,
    TRICKY_TEXTS,
    Hooked,
    Paused,
    client,
    client_of,
    heard,
    keys,
    listening,
    record,
    room_name,
    stream,
    texts,
    throwaway_redis,
    used_before,
)
from course_server.checks.talk import WAIT, dial, receive
from course_server.lab.waiting import eventually


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
    references=("course_server.scaling.feed:RedisFeed",),
)


async def publish_all(url: str, publish: Any, calls: list[tuple[str, str]]) -> list[Any]:
    """Run in the learner's thread: ``publish`` each (room, text) in turn on a client of its own."""
    async with client(url) as redis:
        return [await publish(redis, room, text) for room, text in calls]


def published(ids: list[int], sent: list[str]) -> list[dict[str, Any]]:
    return [{"id": n, "text": text} for n, text in zip(ids, sent, strict=True)]


@publishing.check("ids 1, 2, 3… in a new room: each event kept in the room's stream and published")
async def _basics(h: Harness, publish: Any) -> None:
    rng = random.Random()
    room, sent = room_name(rng), texts(rng, rng.randint(3, 5), tricky=False)
    async with throwaway_redis() as url, listening(url, keys(room)[2]) as channel:
        calls = [(room, text) for text in sent]
        ids = await as_learner(h, "publish() in a new room", publish_all, url, publish, calls)
        numbers = list(range(1, len(sent) + 1))
        expect_equal(ids, numbers, f"what {len(sent)} publish() calls in a new room returned")
        kept = await stream(url, room)
        expected = [(f"0-{n}", text) for n, text in zip(numbers, sent, strict=True)]
        expect_equal(kept, expected, f"{keys(room)[1]} (entry id, text) after them")
        got = await heard(channel)
        expect_equal(got, published(numbers, sent), f"what {keys(room)[2]}'s subscribers got")


@publishing.check("a text with quotes, backslashes, newlines or emoji is kept and sent as it is")
async def _text_as_is(h: Harness, publish: Any) -> None:
    rng = random.Random()
    room = room_name(rng)
    sent = [f"{text} #{rng.randrange(1000)}" for text in TRICKY_TEXTS]
    rng.shuffle(sent)
    async with throwaway_redis() as url, listening(url, keys(room)[2]) as channel:
        calls = [(room, text) for text in sent]
        what = "publish() with texts such as 'she said \"hi\"'"
        ids = await as_learner(h, what, publish_all, url, publish, calls)
        got = await heard(channel)
        for n, text in enumerate(sent):
            message = got[n] if n < len(got) else "nothing"
            expect(
                message == {"id": ids[n], "text": text},
                f"for the text {text!r}, subscribers got {shown(message)}, not "
                f"{shown({'id': ids[n], 'text': text})}: let cjson.encode build the JSON",
            )
        kept = [text for _, text in await stream(url, room)]
        expect_equal(kept, sent[-HISTORY:], f"the texts in {keys(room)[1]}")


@publishing.check("ids go on from the room's last id, whoever published it; each room counts")
async def _counter_in_redis(h: Harness, publish: Any) -> None:
    rng = random.Random()
    room, other_room = room_name(rng), room_name(rng) + "-new"
    before = rng.choice([rng.randint(20, 98), rng.randint(990, 998), rng.randint(10**5, 10**6)])
    async with throwaway_redis() as url:
        async with client(url) as redis:
            await used_before(redis, room, before)

        async def interleaved() -> list[Any]:
            async with client(url) as redis, client(url) as other:
                first = await publish(redis, room, "mine")
                (theirs,) = await record(other, room, "another process's")
                second = await publish(redis, room, "mine again")
                fresh = await publish(redis, other_room, "first")
                return [first, theirs, second, fresh]

        story = (
            f"room {room} had {before} events (the last one, {before}, is still in its stream); "
            "publish() was called, then another process published one, then publish() again, "
            f"then publish() in a new room"
        )
        got = await as_learner(h, story, interleaved)
        expect_equal(
            got,
            [before + 1, before + 2, before + 3, 1],
            f"{story}: the ids (keep the counter in Redis, one per room)",
        )


async def paused_mid_publish(url: str, publish: Any) -> tuple[Any, Any]:
    """Run in the learner's thread: A publishes, paused after one command; B publishes; A goes on.

    Returns A's id (or what A's publish raised) and B's id (or ``WAITED`` if B waited for A).
    """
    async with client_of(Paused, url) as a, client(url) as b:
        first = asyncio.ensure_future(publish(a, "lobby", "from A"))
        pause = asyncio.ensure_future(a.paused.wait())
        await asyncio.wait({first, pause}, return_when=asyncio.FIRST_COMPLETED)
        pause.cancel()
        outcome: object  # A's id, or what A's publish raised
        try:
            async with asyncio.timeout(WAIT):
                second = await publish(b, "lobby", "from B")
        except TimeoutError:
            second = WAITED
        finally:
            a.resume.set()
            (outcome,) = await asyncio.gather(first, return_exceptions=True)
        if isinstance(outcome, NotImplementedError):
            raise outcome
        return outcome, second  # what A raised, if it did, is the point of the check


WAITED = "waited"


@publishing.check("a process paused mid-publish cannot break the order: publish is one step")
async def _atomic(h: Harness, publish: Any) -> None:
    async with throwaway_redis() as url, listening(url, "room:lobby") as channel:
        what = "two processes publishing at once"
        a, b = await as_learner(h, what, paused_mid_publish, url, publish)
        story = "process A stopped after its first Redis command, process B published meanwhile"
        expect(
            b != WAITED,
            f"{story}, and B's publish() waited for A ({WAIT:g} s): a lock in one process does "
            "not hold another process back. Make 'next id, keep, publish' one step: a Lua "
            "script (redis.eval)",
        )
        expect(
            not isinstance(a, Exception),
            f"{story}, then A's publish() raised {type(a).__name__}: {a}. Make 'next id, keep, "
            "publish' one step: a Lua script (redis.eval)",
        )
        expect([a, b] in ([1, 2], [2, 1]), f"{story}: A got id {a}, B got id {b}")
        kept = await stream(url, "lobby")
        texts_by_id = {a: "from A", b: "from B"}
        expected = [("0-1", texts_by_id[1]), ("0-2", texts_by_id[2])]
        expect(kept == expected, f"{story}; A got id {a}, and the stream holds {kept}")
        got = await heard(channel)
        sent = [{"id": 1, "text": texts_by_id[1]}, {"id": 2, "text": texts_by_id[2]}]
        expect(got == sent, f"{story}; A got id {a}, and subscribers got {got}, not {sent}")


PUBLISHERS, EACH = 6, 8


@publishing.check(f"{PUBLISHERS} processes publishing at once: each id once, sent in id order")
async def _concurrent(h: Harness, publish: Any) -> None:
    rng = random.Random()
    room = room_name(rng)
    sent = {
        (p, n): f"from {p}: {text}"
        for p in range(PUBLISHERS)
        for n, text in enumerate(texts(rng, EACH))
    }

    async def all_at_once() -> list[Any]:
        clients = [client(url) for _ in range(PUBLISHERS)]

        async def one(p: int) -> list[Any]:
            return [await publish(clients[p], room, sent[p, n]) for n in range(EACH)]

        try:  # every publisher finishes before the clients close, even if one of them raised
            outcomes = await asyncio.gather(*map(one, range(PUBLISHERS)), return_exceptions=True)
        finally:
            for redis in clients:
                await redis.aclose()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return outcomes

    async with throwaway_redis() as url, listening(url, keys(room)[2]) as channel:
        story = f"{PUBLISHERS} processes published {EACH} events each, all at once"
        ids = await as_learner(h, story, all_at_once)
        flat = sorted(n for each in ids for n in each)
        total = PUBLISHERS * EACH
        expect_equal(flat, list(range(1, total + 1)), f"{story}: the ids they got, sorted")
        text_of = {ids[p][n]: sent[p, n] for p in range(PUBLISHERS) for n in range(EACH)}
        got = await heard(channel)
        order = [m.get("id") if isinstance(m, dict) else m for m in got]
        expect_equal(
            order, list(range(1, total + 1)), f"{story}: the ids subscribers got, in order"
        )
        wrong = [m for m in got if m != {"id": m["id"], "text": text_of[m["id"]]}]
        expect(not wrong, f"{story}: subscribers got {shown(wrong[:1])} with another event's text")
        kept = await stream(url, room)
        last = [(f"0-{n}", text_of[n]) for n in range(total - HISTORY + 1, total + 1)]
        expect(
            kept == last, f"{story}: the stream holds {shown(kept[:2])}…, not the last {HISTORY}"
        )


def span(entries: list[str]) -> str:
    return f"{len(entries)} entries ({entries[0]} to {entries[-1]})" if entries else "nothing"


@publishing.check(f"the stream keeps the last {HISTORY} events, no more")
async def _bounded(h: Harness, publish: Any) -> None:
    rng = random.Random()
    room, extra = room_name(rng), rng.randint(1, 8)
    async with throwaway_redis() as url:
        calls = [(room, text) for text in texts(rng, HISTORY + extra, tricky=False)]
        await as_learner(h, f"{len(calls)} publish() calls", publish_all, url, publish, calls)
        kept = [entry for entry, _ in await stream(url, room)]
        expected = [f"0-{n}" for n in range(extra + 1, HISTORY + extra + 1)]
        expect(
            kept == expected,
            f"after {len(calls)} events the stream holds {span(kept)}, not {HISTORY} entries "
            f"(0-{extra + 1} to 0-{HISTORY + extra}): trim it to exactly {HISTORY} (MAXLEN, "
            "without ~)",
        )


# --- 07.2 follow ---------------------------------------------------------------------------

following = exercise(
    "07.2",
    "Follow a room: from the stream, then live, nothing lost",
    target="follow",
    references=("course_server.scaling.intake:Intake",),
)


class Room:
    """The room a check follows: each event's text by id; published as another process would.

    Its ids do not start at 1 (``used_before``), and they cross a power of ten (9 → 10, 99 →
    100, 999 → 1000) where ids compared as text go wrong; its texts are new each run, and the
    last of each batch repeats the first (a follower that dedupes by text loses it).
    """

    def __init__(self, redis: Redis, rng: random.Random) -> None:
        self.redis, self.rng, self.name = redis, rng, room_name(rng)
        self.last = rng.choice([6, 96, 996]) + rng.randint(0, 2)
        self.texts: dict[int, str] = {self.last: "long ago"}
        self.followed_from = 0  # the follower's last_id

    @property
    def channel(self) -> str:
        return keys(self.name)[2]

    async def start(self) -> None:
        await used_before(self.redis, self.name, self.last)

    async def publish(
        self, count: int, published: bool = True, redis: Redis | None = None
    ) -> list[int]:
        """Publish ``count`` new events (``published=False``: as pub/sub lost them); their ids.

        ``redis``: a client of the event loop this runs on, if not the check's.
        """
        sent = texts(self.rng, count)
        if count > 1:
            sent[-1] = sent[0]  # two events may say the same: ids, not texts, tell them apart
        ids = await record(redis or self.redis, self.name, *sent, published=published)
        self.texts.update(zip(ids, sent, strict=True))
        self.last = ids[-1]
        return ids

    def events(self, ids: list[int]) -> list[dict[str, Any]]:
        return [{"id": n, "text": self.texts[n]} for n in ids]


async def serve_follow(
    h: Harness,
    follow: Any,
    url: str,
    room: str,
    hook: Callable[[Redis], Awaitable[None]] | None = None,
    clients: list[Hooked] | None = None,
) -> None:
    """``WS /follow?last_id=N``: each event ``follow`` yields, as JSON, until the client leaves.

    Each follower's Redis client is appended to ``clients``, if given.
    """
    if not inspect.isasyncgenfunction(follow):
        await h.call(follow, None, room, 0)  # a stub, with no yield yet, raises here
        raise CheckFailed("follow must yield the events: an async generator (async def + yield)")

    async def forward(websocket: WebSocket, redis: Redis, last_id: int) -> None:
        async with contextlib.aclosing(follow(redis, room, last_id)) as events:
            async for event in events:
                await websocket.send_json(event)
        await websocket.close(1000, "follow() returned")

    async def endpoint(websocket: WebSocket, last_id: int = 0) -> None:
        await websocket.accept()
        async with client_of(Hooked, url) as redis:
            redis.on_first_read = hook
            if clients is not None:
                clients.append(redis)
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


async def subscribed(url: str, room: Room) -> None:
    """Wait until someone (the follower) is subscribed to the room's channel."""

    async def anyone() -> bool:
        async with client(url) as redis:
            return (await redis.pubsub_numsub(room.channel))[0][1] > 0

    try:
        await eventually(anyone, timeout=2)
    except TimeoutError:
        raise CheckFailed(f"follow() never subscribed to {room.channel}") from None


def listed(room: Room, sent: list[Any]) -> str:
    """Events as their ids where they are the room's own events, else as they came."""
    own = all(
        isinstance(e, dict) and e.get("id") in room.texts and [e] == room.events([e["id"]])
        for e in sent
    )
    return ", ".join(str(e["id"]) if own else shown(e) for e in sent) or "nothing"


async def expect_events(
    h: Harness, websocket: Any, room: Room, ids: list[int], situation: str
) -> None:
    """The follower sends exactly events ``ids`` next; else fail, saying what it sent instead."""
    sent: list[Any] = []
    for n in ids:
        try:
            sent.append(json.loads(await receive(websocket, "the follower", harness=h)))
        except CheckFailed as exc:
            raise CheckFailed(f"{situation}: it sent {listed(room, sent)}, then {exc}") from None
        expected = ", ".join(map(str, ids))
        expect(
            sent[-1] == room.events([n])[0],  # read now: a hook may have published it since
            f"{situation}: it sent {listed(room, sent)}, not {expected}",
        )


def ids(first: int, last: int) -> list[int]:
    return list(range(first, last + 1))


@contextlib.asynccontextmanager
async def follower(
    h: Harness,
    follow: Any,
    published: int,
    unseen: int,
    hook: Any = None,
    clients: list[Hooked] | None = None,
) -> AsyncIterator[tuple[str, Room, Any]]:
    """A room with ``published`` new events, ``follow`` served, a client that missed ``unseen``.

    ``hook(room, redis)``, if given, runs right after ``follow`` first reads the stream, on the
    server's event loop (``redis`` is a client of that loop).
    """
    async with throwaway_redis() as url, client(url) as redis:
        room = Room(redis, random.Random())
        await room.start()
        await room.publish(published)
        on_read = None if hook is None else lambda redis: hook(room, redis)
        await serve_follow(h, follow, url, room.name, on_read, clients)
        assert h.server is not None
        room.followed_from = room.last - unseen
        async with dial(h.server.ws(f"/follow?last_id={room.followed_from}")) as websocket:
            yield url, room, websocket


@following.check("sends the events after last_id from the stream, then new ones as they come")
async def _backlog_then_live(h: Harness, follow: Any) -> None:
    unseen = HISTORY - 4  # more than a page of 10: the whole backlog, not its first page
    async with follower(h, follow, published=HISTORY, unseen=unseen) as (url, room, websocket):
        backlog = ids(room.last - unseen + 1, room.last)
        situation = f"events up to {room.last} stored, a follower from {room.last - unseen}"
        await expect_events(h, websocket, room, backlog, situation)
        await subscribed(url, room)
        live = await room.publish(2)
        same = f"both say {room.texts[live[0]]!r}: ids, not texts, tell events apart"
        await expect_events(h, websocket, room, live, f"then events {live} published ({same})")


@following.check("a follower that has seen every event waits for the next one")
async def _up_to_date(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=3, unseen=0) as (url, room, websocket):
        await subscribed(url, room)
        seen = room.last
        live = await room.publish(1)
        situation = f"events up to {seen} stored, a follower from {seen}, then {live[0]}"
        await expect_events(h, websocket, room, live, situation)


@following.check("events that pub/sub dropped are read from the stream, in order, once")
async def _gap(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=3, unseen=2) as (url, room, websocket):
        backlog = ids(room.last - 1, room.last)
        situation = f"events up to {room.last} stored, a follower from {room.last - 2}"
        await expect_events(h, websocket, room, backlog, situation)
        await subscribed(url, room)
        lost = await room.publish(2, published=False)
        live = await room.publish(1)
        situation = (
            f"events {lost} went into the stream but pub/sub lost them, then {live[0]} was "
            "published (when an id jumps, read the gap from the stream)"
        )
        await expect_events(h, websocket, room, lost + live, situation)
        lost = await room.publish(1, published=False)
        live = await room.publish(1)
        situation = f"then {lost[0]} was lost and {live[0]} published"
        await expect_events(h, websocket, room, lost + live, situation)
        live = await room.publish(1)
        await expect_events(h, websocket, room, live, f"then {live[0]} was published")


@following.check("an event that comes twice is sent once, a recent one or an old one")
async def _duplicate(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=3, unseen=3) as (url, room, websocket):
        backlog = ids(room.last - 2, room.last)
        situation = f"events up to {room.last} stored, a follower from {room.last - 3}"
        await expect_events(h, websocket, room, backlog, situation)
        await subscribed(url, room)
        again = [room.last, room.last - 2]
        for event in room.events(again):  # a process sending them again
            await room.redis.publish(room.channel, json.dumps(event))
        live = await room.publish(1)
        situation = f"events {again} came again by pub/sub, then {live[0]}"
        await expect_events(h, websocket, room, live, situation)


@following.check("live events with consecutive ids are sent without reading the stream again")
async def _no_needless_reads(h: Harness, follow: Any) -> None:
    clients: list[Hooked] = []
    async with follower(h, follow, 3, unseen=1, clients=clients) as (url, room, websocket):
        await expect_events(h, websocket, room, [room.last], f"a follower from {room.last - 1}")
        await subscribed(url, room)
        reads = clients[0].reads
        live = await room.publish(4)
        await expect_events(h, websocket, room, live, f"then {live} published, none lost")
        more = clients[0].reads - reads
        expect(
            more == 0,
            f"pub/sub brought {live} in order, and follow() read the stream {more} more times: "
            "read it only when an id jumps",
        )


async def publish_meanwhile(room: Room, redis: Redis) -> None:
    await room.publish(1, redis=redis)


@following.check("an event published while the stream is read is not lost: subscribe first")
async def _subscribe_first(h: Harness, follow: Any) -> None:
    hook = publish_meanwhile
    async with follower(h, follow, 2, unseen=2, hook=hook) as (_, room, websocket):
        start = room.followed_from
        situation = (
            f"events up to {start + 2} stored, a follower from {start}, and {start + 3} "
            "published just after follow() read the stream"
        )
        await expect_events(h, websocket, room, ids(start + 1, start + 3), situation)


QUIET = 1.5


@following.check(f"a follower waits through a quiet room ({QUIET:g} s), then goes on", timeout=8)
async def _quiet(h: Harness, follow: Any) -> None:
    async with follower(h, follow, published=2, unseen=0) as (url, room, websocket):
        await subscribed(url, room)
        await asyncio.sleep(QUIET)  # the room's quiet period: what the check is about
        live = await room.publish(1)
        situation = f"a follower up to date, nothing for {QUIET:g} s, then {live[0]} published"
        await expect_events(h, websocket, room, live, situation)
