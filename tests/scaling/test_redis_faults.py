"""Lesson 07's faults: Redis goes away mid-chat, and comes back empty.

The servers keep their WebSockets open throughout. While Redis is unreachable, a message gets
an ``unavailable`` error (never a silent drop) and a join is told to try again later; once it is
back, the servers reconnect on their own and the clients resend: nothing is lost, and ids go on
increasing although Redis forgot everything (it runs without persistence here, on purpose).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import httpx
import pytest
from conftest import eventually, wait_timeout
from redis_fixtures import bring_back
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server import RunningServer
from course_server.clients.scaling import chatter
from course_server.tools.redis_server import RedisServer

pytestmark = pytest.mark.anyio

_rooms = itertools.count()


@pytest.fixture
def room(redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]) -> Iterator[str]:
    yield f"faults{next(_rooms)}"
    bring_back(redis_server, servers)  # for the next test, if this one left Redis down


async def test_a_message_while_redis_is_down_gets_unavailable_and_reaches_nobody(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana, chatter(b, room, "ben") as ben:
        await ana.until("join", username="ben")
        redis_server.stop()
        await ana.say("lost?", client_msg_id="k1")
        reply = await ana.recv()
        assert (reply["type"], reply["code"]) == ("error", "unavailable")
        with pytest.raises(TimeoutError):
            await ben.recv(timeout=0.2)  # nothing arrived: nothing was sent


async def test_after_redis_restarts_empty_the_resend_arrives_with_a_higher_id(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana") as ana, chatter(b, room, "ben") as ben:
        await ana.until("join", username="ben")
        await ana.say("before", client_msg_id="k0")
        [*_, before] = await ben.until("message", content="before")
        redis_server.restart()
        await ana.send_until_acked("after", "k1", deadline=wait_timeout(10))
        [*_, after] = await ben.until("message", content="after")
        assert after["id"] > before["id"]


async def test_after_redis_restarts_empty_every_user_is_listed_again(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, b = servers
    async with chatter(a, room, "ana"), chatter(b, room, "ben"):
        redis_server.restart()

        async def listed() -> bool:
            async with httpx.AsyncClient() as http:
                reply = await http.get(b.url(f"/rooms/{room}/users"))
            # Sorted: after Redis lost everything, the order is that of re-registering.
            return reply.status_code == 200 and sorted(reply.json()["users"]) == ["ana", "ben"]

        await eventually(listed, timeout=10)


async def test_a_join_while_redis_is_down_is_told_to_try_again_later(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, _ = servers
    redis_server.stop()
    async with connect(a.ws(f"/chat/{room}/ana")) as websocket:
        async with asyncio.timeout(wait_timeout()):
            assert '"code":"unavailable"' in await websocket.recv()
            with pytest.raises(ConnectionClosed) as closed:
                await websocket.recv()
    assert closed.value.rcvd.code == 1013


async def test_the_users_endpoint_answers_503_while_redis_is_down(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer, room: str
) -> None:
    a, _ = servers
    redis_server.stop()
    async with httpx.AsyncClient() as http:
        reply = await http.get(a.url(f"/rooms/{room}/users"))
    assert reply.status_code == 503
