"""Lesson 07's chat at rate: a batch of commands is one script call, against a real Redis.

What ``RedisRooms`` queues in one tick goes out as one ``EVALSHA`` of ``scripts.BATCH``, whose
events are published once per room; each "process" here is a ``RedisLink`` and its ``RedisRooms``
in this test's loop, with fake peers for the WebSockets. Counting uses Redis' own statistics
(``INFO commandstats``), reset just before the batch. Faults are played by wrapping
``Scripts.batch``: a call that never reaches Redis, and one whose reply is lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import redis.asyncio as redis
from conftest import eventually
from fake_peers import FakePeer, Frame

from course_server.realtime.fanout import Peer
from course_server.realtime.messages import SendMessage
from course_server.scaling.link import Call, RedisLink, connect
from course_server.scaling.rooms import RedisRooms
from course_server.scaling.scripts import RoomKeys
from course_server.scaling.shared_room import MemberState, SharedRoom
from course_server.scaling.worker import BATCH

pytestmark = pytest.mark.anyio

_rooms = itertools.count()


@pytest.fixture
def room() -> str:
    return f"batching{next(_rooms)}"


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = connect(redis_url, "test-admin")
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def process(url: str) -> AsyncIterator[RedisRooms]:
    """One server process's rooms; its heartbeat is slow, so it makes no script call meanwhile.

    Its history holds every message of a test, so the room's stream shows all that was recorded.
    """
    async with RedisLink(url) as link:
        rooms = RedisRooms(link, history_size=4 * BATCH, heartbeat=60, presence_ttl=120)
        await rooms.start()
        try:
            yield rooms
        finally:
            await rooms.aclose()


async def enter(rooms: RedisRooms, name: str, username: str) -> tuple[SharedRoom, FakePeer]:
    """``username`` joins ``name`` and is admitted."""
    peer = FakePeer()
    room = rooms.join(name, username, peer)  # type: ignore[arg-type]
    member = room.member(username)
    assert member is not None
    await eventually(lambda: member.state is MemberState.JOINED)
    return room, peer


def post(room: SharedRoom, username: str, contents: Sequence[str], *, keyed: bool = True) -> None:
    """Post every one of ``contents`` in this tick (no await between): one batch, if it fits."""
    for content in contents:
        key = content if keyed else None
        room.post(username, SendMessage(type="message", content=content, client_msg_id=key))


def said(peer: FakePeer | Peer) -> list[Frame]:
    return [f for f in peer.frames if f["type"] == "message"]  # type: ignore[union-attr]


def acks(peer: FakePeer) -> list[tuple[str, int]]:
    """Every ack ``peer`` got, as (client_msg_id, id), in order."""
    return [(f["client_msg_id"], f["id"]) for f in peer.frames if f["type"] == "ack"]


def errors(peer: FakePeer) -> list[Frame]:
    return [f for f in peer.frames if f["type"] == "error"]


def kinds(entries: list[tuple[str, dict[str, str]]]) -> list[str]:
    return [json.loads(fields["e"])["type"] for _, fields in entries]


async def calls(admin: redis.Redis, command: str) -> int:
    """How many times Redis ran ``command`` since the last ``CONFIG RESETSTAT``."""
    stats: dict[str, Any] = await admin.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def logged(admin: redis.Redis, name: str) -> list[tuple[int, str]]:
    """The room's stream, as (id, content) of each message event."""
    entries = await admin.xrange(RoomKeys.of(name).log, "-", "+")
    events = [json.loads(fields["e"]) for _, fields in entries]
    return [(e["id"], e["content"]) for e in events if e["type"] == "message"]


Batch = Callable[[Sequence[Call]], Awaitable[list[Any]]]


def flaky(rooms: RedisRooms, monkeypatch: pytest.MonkeyPatch, fail: Callable[[int], str]) -> None:
    """Wrap the rooms' ``Scripts.batch``: ``fail(n)`` says what the n-th call (from 1) meets.

    "" runs it; "unsent" fails before it reaches Redis; "reply lost" runs it, then fails.
    """
    scripts = rooms._scripts
    real: Batch = scripts.batch
    count = itertools.count(1)

    async def batch(batch_calls: Sequence[Call]) -> list[Any]:
        fault = fail(next(count))
        if fault == "unsent":
            raise ConnectionError("Redis went away before the batch")
        results = await real(batch_calls)
        if fault == "reply lost":
            raise ConnectionError("Redis went away before its reply")
        return results

    monkeypatch.setattr(scripts, "batch", batch)


async def test_posts_queued_in_one_tick_are_one_script_call_and_one_publish(
    redis_url: str, admin: redis.Redis, room: str
) -> None:
    async with process(redis_url) as rooms:
        shared, ana = await enter(rooms, room, "ana")
        await admin.config_resetstat()
        post(shared, "ana", [f"m{n}" for n in range(20)])
        await eventually(lambda: len(said(ana)) == 20)
        assert await calls(admin, "evalsha") == 1
        assert await calls(admin, "publish") == 1


async def test_a_queue_longer_than_a_batch_takes_one_call_per_batch(
    redis_url: str, admin: redis.Redis, room: str
) -> None:
    async with process(redis_url) as rooms:
        shared, ana = await enter(rooms, room, "ana")
        await admin.config_resetstat()
        post(shared, "ana", [f"m{n}" for n in range(BATCH + 1)])
        await eventually(lambda: len(said(ana)) == BATCH + 1)
        assert await calls(admin, "evalsha") == 2


async def test_a_batch_reaches_another_process_in_order_with_consecutive_ids(
    redis_url: str, room: str
) -> None:
    async with process(redis_url) as a, process(redis_url) as b:
        _, ben = await enter(b, room, "ben")
        shared, _ = await enter(a, room, "ana")
        contents = [f"m{n}" for n in range(50)]
        post(shared, "ana", contents)
        await eventually(lambda: len(said(ben)) == 50)
        assert [f["content"] for f in said(ben)] == contents
        ids = [f["id"] for f in said(ben)]
        assert ids == list(range(ids[0], ids[0] + 50))


async def test_a_batch_of_joins_and_posts_runs_in_the_order_queued(
    redis_url: str, admin: redis.Redis, room: str
) -> None:
    async with process(redis_url) as rooms:
        shared, _ = await enter(rooms, room, "ana")
        post(shared, "ana", ["before"])
        rooms.join(room, "ben", FakePeer())  # type: ignore[arg-type]
        post(shared, "ana", ["after"])
        await eventually(lambda: shared.queued == 0)
        entries = await admin.xrange(RoomKeys.of(room).log, "-", "+")
        assert kinds(entries)[-3:] == ["message", "join", "message"]


async def test_a_batch_that_never_reached_redis_is_resent_once_each(
    redis_url: str, admin: redis.Redis, room: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with process(redis_url) as rooms:
        shared, ana = await enter(rooms, room, "ana")
        # A queue of two batches; Redis goes away between them.
        flaky(rooms, monkeypatch, lambda n: "unsent" if n == 2 else "")
        contents = [f"m{n}" for n in range(BATCH + 10)]
        post(shared, "ana", contents)
        await eventually(lambda: len(acks(ana)) + len(errors(ana)) == len(contents))
        assert len(errors(ana)) == 10  # the second batch's: each told to send again
        first = dict(acks(ana))
        post(shared, "ana", contents)  # the client resends all it sent (same client_msg_ids)
        await eventually(lambda: len(acks(ana)) == 2 * BATCH + 10)
        # The first batch's are acked again with the ids they got: not recorded twice.
        assert acks(ana)[BATCH : 2 * BATCH] == acks(ana)[:BATCH]
        assert dict(acks(ana)[BATCH:]).items() >= first.items()
        assert [c for _, c in await logged(admin, room)] == contents  # each once, in order


async def test_a_batch_whose_reply_was_lost_is_acked_on_resend_not_repeated(
    redis_url: str, admin: redis.Redis, room: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with process(redis_url) as a, process(redis_url) as b:
        _, ben = await enter(b, room, "ben")
        shared, ana = await enter(a, room, "ana")
        flaky(a, monkeypatch, lambda n: "reply lost" if n == 1 else "")
        contents = [f"m{n}" for n in range(20)]
        post(shared, "ana", contents)
        await eventually(lambda: len(said(ben)) == 20)  # Redis ran it: everyone got them
        await eventually(lambda: len(errors(ana)) == 20)  # …but its sender was told to resend
        before = len(acks(ana))
        post(shared, "ana", contents)
        await eventually(lambda: len(acks(ana)) == before + 20)
        stored = await logged(admin, room)
        assert [c for _, c in stored] == contents  # recorded once each
        assert acks(ana)[before:] == [(c, i) for i, c in stored]  # acked with their first ids
        assert len(said(ben)) == 20
