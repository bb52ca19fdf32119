"""Room names cost Redis memory only for a while: an emptied room's keys expire.

The attack: join a made-up room name, leave, repeat. Each name used to leave its id counter in
Redis for a day. Against a real Redis and two servers: once a room empties, its history is
gone and its counter expires within ``IDLE_SECONDS``; an occupied room's keys do not expire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from conftest import eventually
from websockets.asyncio.client import connect

from course_server import RunningServer
from course_server.scaling.commands import IDLE_SECONDS
from course_server.scaling.scripts import RoomKeys

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    await connection.aclose()


async def test_an_emptied_rooms_counter_expires_within_the_idle_time(
    servers: tuple[RunningServer, RunningServer], client: redis.Redis
) -> None:
    keys = RoomKeys.of("made-up-1")
    async with connect(servers[0].ws("/chat/made-up-1/mallory")) as websocket:
        await websocket.recv()  # the history: the join went through Redis
        assert await client.ttl(keys.seq) == -1  # occupied: kept

    async def expiring() -> bool:
        return 0 < await client.ttl(keys.seq) <= IDLE_SECONDS

    await eventually(expiring)


async def test_an_emptied_rooms_history_is_gone_at_once(
    servers: tuple[RunningServer, RunningServer], client: redis.Redis
) -> None:
    keys = RoomKeys.of("made-up-2")
    async with connect(servers[1].ws("/chat/made-up-2/mallory")) as websocket:
        await websocket.recv()  # the history, after the join was logged
        assert await client.exists(keys.log, keys.users, keys.owners) == 3

    async def gone() -> bool:
        return await client.exists(keys.log, keys.users, keys.owners) == 0

    await eventually(gone)
