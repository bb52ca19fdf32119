"""Lesson 07 with real processes: ``python -m course_server --redis-url …``, stopped and killed.

Processes share nothing but Redis. A process stopped with Ctrl+C says goodbye (its users leave
at once); a killed one cannot, so its users leave when its heartbeat expires, and its clients
reconnect to another process and resume with nothing lost.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from conftest import eventually, wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server.clients.scaling import Chatter, chatter
from course_server.scaling.rooms import HEARTBEAT, PRESENCE_TTL
from course_server.scaling.scripts import PROCS
from course_server.tools.processes import ServerProcess, spawn_many

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def processes(redis_url: str) -> Iterator[list[ServerProcess]]:
    """Five processes, started at once: a and b serve every test, the others are stopped/killed."""
    started = spawn_many(5, redis_url=redis_url, timeout=wait_timeout(20))
    yield started
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def a(processes: list[ServerProcess]) -> ServerProcess:
    return processes[0]


@pytest.fixture(scope="module")
def b(processes: list[ServerProcess]) -> ServerProcess:
    return processes[1]


def users(server: ServerProcess, room: str) -> list[str]:
    return httpx.get(server.url(f"/rooms/{room}/users")).json()["users"]


async def test_clients_of_two_processes_chat_through_redis(
    a: ServerProcess, b: ServerProcess
) -> None:
    async with chatter(a, "procs", "ana") as ana, chatter(b, "procs", "ben") as ben:
        await ana.until("join", username="ben")
        await ben.say("hi ana")
        [message] = await ana.until("message")
        assert (message["username"], message["content"]) == ("ben", "hi ana")
        assert users(a, "procs") == users(b, "procs") == ["ana", "ben"]


async def test_a_stopped_process_says_goodbye_and_its_users_leave_at_once(
    redis_url: str, b: ServerProcess, processes: list[ServerProcess]
) -> None:
    c = processes[2]
    admin = redis.Redis.from_url(redis_url)
    registered = admin.zcard(PROCS)
    async with chatter(b, "goodbye", "ben") as ben:
        async with chatter(c, "goodbye", "carol") as carol:
            await ben.until("join", username="carol")
            stopped = time.monotonic()
            assert c.stop() == 0
            with pytest.raises(ConnectionClosed) as closed:
                await carol.recv()
            assert closed.value.rcvd.code == 1001
        await ben.until("leave", username="carol")
        assert time.monotonic() - stopped < PRESENCE_TTL  # not left to expire: said goodbye
    with admin:
        assert admin.zcard(PROCS) == registered - 1  # forgotten at once, not left to expire


async def rejoin(server: ServerProcess, room: str, name: str, last_id: int) -> Chatter:
    """Reconnect like a real client: while the name is still held (4000), back off and retry."""
    deadline = time.monotonic() + wait_timeout(PRESENCE_TTL + 3 * HEARTBEAT)
    while True:
        try:
            async with chatter(server, room, name, last_id=last_id) as client:
                return client  # closed on return: its history is all this test needs
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code != 4000 or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)  # the client's backoff


async def test_a_killed_process_users_leave_within_its_ttl_and_resume_elsewhere(
    a: ServerProcess, b: ServerProcess, processes: list[ServerProcess]
) -> None:
    c = processes[3]
    async with chatter(b, "crash", "ben") as ben:
        async with chatter(c, "crash", "carol") as carol:
            await ben.until("join", username="carol")
            await ben.say("before")
            await carol.until("message", content="before")
            c.kill()
            killed = time.monotonic()
            for n in range(3):
                await ben.say(f"while away {n}")
        # Its name stays taken until its process's heartbeat expires: then carol is back.
        back = await rejoin(a, "crash", "carol", carol.last_id)
        assert time.monotonic() - killed < wait_timeout(PRESENCE_TTL + 2 * HEARTBEAT)
        resume, *missed, joined = back.history
        assert resume["complete"] is True
        messages = [f["content"] for f in missed if f["type"] == "message"]
        assert messages == ["while away 0", "while away 1", "while away 2"]
        assert (joined["type"], joined["username"]) == ("join", "carol")
        frames = await ben.until("join", username="carol")
        assert ("leave", "carol") in [(f["type"], f.get("username")) for f in frames]
        await eventually(lambda: users(b, "crash") == ["ben"])  # the rejoined carol left too


async def test_a_killed_process_lobby_members_leave_within_its_ttl(
    b: ServerProcess, processes: list[ServerProcess]
) -> None:
    e = processes[4]
    async with connect(b.ws("/ws/lobby")) as ben, connect(e.ws("/ws/lobby")) as eve:
        await ben.send(json.dumps({"type": "join", "room": "crash", "name": "ben"}))
        await eve.send(json.dumps({"type": "join", "room": "crash", "name": "eve"}))
        async with asyncio.timeout(wait_timeout()):
            while json.loads(await ben.recv()) != PRESENCE_BOTH:
                pass
        e.kill()
        killed = time.monotonic()
        async with asyncio.timeout(wait_timeout(PRESENCE_TTL + 3 * HEARTBEAT)):
            frames = [json.loads(await ben.recv()) for _ in range(2)]
        assert time.monotonic() - killed < wait_timeout(PRESENCE_TTL + 2 * HEARTBEAT)
        assert frames == [
            {"type": "system", "message": "A user left the room"},
            {"type": "presence", "room": "crash", "count": 1, "names": ["ben"]},
        ]
        async with httpx.AsyncClient() as http:
            rooms = (await http.get(b.url("/lobby/rooms"))).json()["rooms"]
        assert rooms["crash"] == 1


PRESENCE_BOTH = {"type": "presence", "room": "crash", "count": 2, "names": ["ben", "eve"]}
