"""Lesson 07: lesson 05's lobby across two processes that share one Redis behaves as within one.

Two servers ("A" and "B") run in threads of this test process, each with its own event loop and
Redis connections, so all they share is what Redis holds. (A killed process's members leaving
is in ``test_redis_processes.py``.) Each test uses rooms of its own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis
from conftest import eventually, wait_timeout
from lobby_clients import JOINED, LEFT, Client, presence
from redis_fixtures import bring_back
from websockets.asyncio.client import connect

from course_server import RunningServer
from course_server.scaling.lobby_scripts import ROOMS, seats_key
from course_server.tools.redis_server import RedisServer

pytestmark = pytest.mark.anyio

_rooms = itertools.count()


@pytest.fixture
def room(redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]) -> Iterator[str]:
    yield f"lobby{next(_rooms)}"
    bring_back(redis_server, servers)  # for the next test, if this one left Redis down


@asynccontextmanager
async def client(server: RunningServer) -> AsyncIterator[Client]:
    async with connect(server.ws("/ws/lobby")) as websocket:
        yield Client(websocket)


@asynccontextmanager
async def pair(
    servers: tuple[RunningServer, RunningServer], room: str, *, names: bool = False
) -> AsyncIterator[tuple[Client, Client]]:
    """Ana on A and Ben on B, both in ``room``, and Ben's join already seen by Ana."""
    a, b = servers
    async with client(a) as ana, client(b) as ben:
        await ana.join(room, **({"name": "ana"} if names else {}))
        await ben.join(room, **({"name": "ben"} if names else {}))
        await ana.recv_n(2)
        yield ana, ben


def counts(server: RunningServer) -> dict[str, int]:
    return httpx.get(server.url("/lobby/rooms")).json()["rooms"]


async def test_a_join_on_one_process_is_announced_to_members_on_the_other(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with client(a) as ana, client(b) as ben:
        assert await ana.join(room, name="ana") == presence(room, 1, ["ana"])
        assert await ben.join(room, name="ben") == presence(room, 2, ["ana", "ben"])
        assert await ana.recv_n(2) == [JOINED, presence(room, 2, ["ana", "ben"])]


async def test_a_message_reaches_every_member_on_every_process_sender_included(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with client(a) as ana, client(b) as ben, client(b) as carol:
        await ana.join(room)
        await ben.join(room)
        await carol.join(room)
        await ana.recv_n(4)  # two joins, two presences
        await ben.recv_n(2)
        await ben.send(type="message", content="hello from B")
        expected = {"type": "message", "content": "hello from B"}
        for member in (ana, ben, carol):
            assert await member.recv() == expected


async def test_every_member_sees_one_order_of_messages_from_both_processes(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    async with pair(servers, room) as (ana, ben):
        for n in range(10):
            await (ana if n % 2 else ben).send(type="message", content=f"m{n}")
        seen = [[f["content"] for f in await member.recv_n(10)] for member in (ana, ben)]
        assert seen[0] == seen[1]
        assert sorted(seen[0]) == sorted(f"m{n}" for n in range(10))


async def test_leaving_on_one_process_is_announced_on_the_other(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    async with pair(servers, room, names=True) as (ana, ben):
        await ben.send(type="leave")
        assert await ben.recv() == {"type": "left", "room": room}
        assert await ana.recv_n(2) == [LEFT, presence(room, 1, ["ana"])]


async def test_switching_rooms_across_processes_moves_the_member(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    other = f"{room}-other"
    async with pair(servers, room) as (ana, ben):
        await ben.send(type="join", room=other)
        assert await ben.recv_n(2) == [{"type": "left", "room": room}, presence(other, 1)]
        assert await ana.recv_n(2) == [LEFT, presence(room, 1)]
        await ben.send(type="message", content="only in the other room")
        assert (await ben.recv())["content"] == "only in the other room"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # nothing else comes: it went to the other room
                await ana.websocket.recv()


async def test_a_disconnect_on_one_process_is_a_leave_on_the_other(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with client(a) as ana:
        await ana.join(room)
        async with client(b) as ben:
            await ben.join(room)
            await ana.recv_n(2)
        assert await ana.recv_n(2) == [LEFT, presence(room, 1)]


async def test_rooms_endpoint_on_either_process_counts_members_on_both(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, b = servers
    async with client(a) as ana, client(b) as ben, client(b) as carol:
        await ana.join(room)
        await ben.join(room)
        await carol.join(f"{room}-x")
        for server in servers:
            assert {k: v for k, v in counts(server).items() if k.startswith(room)} == {
                room: 2,
                f"{room}-x": 1,
            }


async def test_an_emptied_room_is_gone_from_redis_and_from_each_process(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    async with pair(servers, room):
        pass  # both leave
    for server in servers:
        server.call(asyncio.wait_for(server.app.state.lobby.wait_empty(), wait_timeout()))
    with redis.Redis.from_url(redis_server.url) as r:
        assert r.exists(seats_key(room)) == 0
        assert not r.sismember(ROOMS, room)


async def test_an_error_about_a_later_frame_never_overtakes_the_senders_message(
    servers: tuple[RunningServer, RunningServer], room: str
) -> None:
    a, _ = servers
    async with client(a) as ana:
        await ana.join(room)
        for n in range(5):
            await ana.send(type="message", content=f"m{n}")
            await ana.websocket.send("not json")
        frames = await ana.recv_n(10)
        kinds = [f.get("content", f["type"]) for f in frames]
        assert kinds == [kind for n in range(5) for kind in (f"m{n}", "error")]


async def test_a_message_while_redis_is_down_gets_unavailable(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, _ = servers
    async with client(a) as ana:
        await ana.join(room)
        redis_server.stop()
        await ana.send(type="message", content="lost?")
        reply = await ana.recv()
        assert (reply["type"], reply["code"]) == ("error", "unavailable")


async def test_a_join_while_redis_is_down_gets_unavailable_and_no_seat(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, _ = servers
    async with client(a) as ana:
        redis_server.stop()
        await ana.send(type="join", room=room)
        reply = await ana.recv()
        assert (reply["type"], reply["code"]) == ("error", "unavailable")
        await ana.send(type="message", content="in no room")
        assert (await ana.recv())["code"] == "not_in_room"


async def test_after_redis_restarts_empty_members_are_counted_and_talk_again(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, _ = servers
    async with pair(servers, room) as (ana, ben):
        redis_server.restart()
        # Each process registers its members again after its next heartbeat.
        await eventually(lambda: counts(a).get(room) == 2, timeout=10)
        for server in servers:
            connected = server.app.state.backend.link.subscriber.connected
            server.call(asyncio.wait_for(connected.wait(), wait_timeout(10)))
        await ana.send(type="message", content="still here?")

        for member in (ana, ben):
            async with asyncio.timeout(
                wait_timeout()
            ):  # presence frames of the re-registration first
                while (await member.recv()).get("content") != "still here?":
                    pass
