"""Lesson 07: the chat across processes that share one Redis behaves as within one.

Two servers ("A" and "B") run in threads of this test process, each with its own event loop and
its own Redis connections, so Redis sees two processes: all they share is what it holds. (Real
processes, and killing one, are in ``test_redis_processes.py``.) Each test uses a room of its own.
"""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
import redis
from conftest import eventually, wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server import RunningServer
from course_server.clients.scaling import chatter
from course_server.scaling.scripts import RoomKeys

pytestmark = pytest.mark.anyio

_rooms = itertools.count()


@pytest.fixture
def room() -> str:
    return f"room{next(_rooms)}"


def users(server: RunningServer, room: str) -> list[str]:
    return httpx.get(server.url(f"/rooms/{room}/users")).json()["users"]


async def test_a_message_sent_to_one_process_reaches_members_on_the_other(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana, chatter(b, room, "ben") as ben:
        await ana.until("join", username="ben")
        await ana.say("hello from A")
        [frame] = await ben.until("message")
        assert (frame["username"], frame["content"], frame["id"]) == ("ana", "hello from A", 3)


async def test_ids_are_one_increasing_sequence_per_room_on_every_process(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana, chatter(b, room, "ben") as ben:
        await ana.until("join", username="ben")
        for n in range(6):
            await (ana if n % 2 else ben).say(f"m{n}")
        seen = {}
        for client in (ana, ben):
            frames = [await client.recv() for _ in range(6)]
            seen[client.name] = [(f["id"], f["content"]) for f in frames]
        assert seen["ana"] == seen["ben"]
        assert [event_id for event_id, _ in seen["ana"]] == [3, 4, 5, 6, 7, 8]


async def test_join_and_leave_on_one_process_reach_the_other(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana:
        async with chatter(b, room, "ben"):
            [joined] = await ana.until("join", username="ben")
        [left] = await ana.until("leave", username="ben")
        assert (joined["id"], left["id"], left["content"]) == (2, 3, "ben left the room")


async def test_users_endpoint_on_either_process_lists_everyone_in_join_order(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(b, room, "carol"), chatter(a, room, "ana"), chatter(b, room, "ben"):
        assert users(a, room) == users(b, room) == ["carol", "ana", "ben"]
    await eventually(lambda: users(a, room) == users(b, room) == [])


async def test_a_name_held_on_another_process_is_refused_with_4000(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana"):
        async with connect(b.ws(f"/chat/{room}/ana")) as second:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(wait_timeout()):
                    await second.recv()
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "Username taken")
        assert users(b, room) == ["ana"]


async def test_a_newcomer_gets_history_recorded_through_every_process(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana:
        await ana.say("first")
        await ana.until("message")
        async with chatter(b, room, "ben") as ben:
            assert [(f["type"], f["id"]) for f in ben.history] == [
                ("join", 1),
                ("message", 2),
                ("join", 3),
            ]


async def test_resume_on_the_other_process_gets_exactly_what_was_missed(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(b, room, "ben") as ben:
        async with chatter(a, room, "ana") as ana:
            last_seen = ana.last_id
        await ben.until("leave", username="ana")
        for n in range(3):
            await ben.say(f"while away {n}")
        await ben.until("message", content="while away 2")
        async with chatter(b, room, "ana", last_id=last_seen) as back:
            resume, *missed, rejoined = back.history
    assert resume == {"type": "resume", "complete": True, "after": 2, "oldest_id": 1}
    assert [(f["type"], f.get("content")) for f in missed] == [
        ("leave", "ana left the room"),
        ("message", "while away 0"),
        ("message", "while away 1"),
        ("message", "while away 2"),
    ]
    assert rejoined["id"] == 7


async def test_a_resend_to_the_other_process_is_acked_with_the_first_id_not_repeated(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with chatter(b, room, "ben") as ben:
        async with chatter(a, room, "ana") as ana:
            await ana.say("once", client_msg_id="k1")
            [*_, ack] = await ana.until("ack")
        # Until B hears that ana left A, her name is taken there (4000): wait for her leave.
        frames = await ben.until("leave", username="ana")
        async with chatter(b, room, "ana", last_id=ack["id"]) as again:
            await again.say("once", client_msg_id="k1")
            assert await again.recv() == {"type": "ack", "client_msg_id": "k1", "id": ack["id"]}
        frames += await ben.until("leave", username="ana")
        assert [f["content"] for f in frames if f["type"] == "message"] == ["once"]


async def test_events_missed_by_a_lost_subscription_are_filled_from_the_stream(
    servers: tuple[RunningServer, RunningServer], redis_url: str, room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana, chatter(b, room, "ben") as ben:
        await ana.until("join", username="ben")
        reconnects = b.app.state.backend.link.subscriber.reconnects
        with redis.Redis.from_url(redis_url) as admin:
            admin.client_kill_filter(_type="pubsub")  # every subscriber drops, A's and B's
        for n in range(5):
            await ana.say(f"m{n}")
        frames = [await ben.recv() for _ in range(5)]
        assert [(f["id"], f["content"]) for f in frames] == [(3 + n, f"m{n}") for n in range(5)]
        assert b.app.state.backend.link.subscriber.reconnects > reconnects


async def test_an_emptied_room_is_freed_on_every_process_and_in_redis(
    servers: tuple[RunningServer, RunningServer], redis_url: str, room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana, chatter(b, room, "ben"):
        await ana.say("hi", client_msg_id="k")
        await ana.until("ack")
    for server in servers:
        rooms = server.app.state.chat_rooms
        server.call(asyncio.wait_for(rooms.wait_until(lambda r: room not in r), wait_timeout()))
    keys = RoomKeys.of(room)
    with redis.Redis.from_url(redis_url) as client:
        await eventually(lambda: client.exists(keys.log, keys.users, keys.sent) == 0)
        assert client.ttl(keys.seq) > 0


async def test_an_error_about_a_later_frame_never_overtakes_the_senders_own_message(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, _ = servers
    async with chatter(a, room, "ana") as ana:
        for n in range(5):
            await ana.say(f"m{n}")
            await ana.websocket.send("not json")
        frames = [await ana.recv() for _ in range(10)]
        kinds = [f["type"] if f["type"] != "message" else f["content"] for f in frames]
        assert kinds == [kind for n in range(5) for kind in (f"m{n}", "error")]


async def test_a_pong_waits_for_the_message_sent_before_the_ping(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, _ = servers
    async with chatter(a, room, "ana") as ana:
        await ana.say("first", client_msg_id="k1")
        await ana.websocket.send('{"type": "ping"}')
        frames = [await ana.recv() for _ in range(3)]
        assert [f["type"] for f in frames] == ["message", "ack", "pong"]
