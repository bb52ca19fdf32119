"""The Security contract with Redis: two ``python -m course_server`` processes, one Redis.

Name ownership holds across processes: the real alice seated on process A keeps her seat and
her private messages while an impostor tries on process B. Names are refused the same way on
either process, and a flood through B reaches A's clients no faster than B's limit allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server.tools.processes import ServerProcess, spawn_many

pytestmark = pytest.mark.anyio

RATE = 1.0
IMPOSTOR = 4003


@pytest.fixture(scope="module")
def processes(redis_url: str) -> Iterator[list[ServerProcess]]:
    """Processes A and B on one Redis, at ``COURSE_RATE_LIMIT=1``."""
    env = {"COURSE_RATE_LIMIT": str(RATE)}
    started = spawn_many(2, redis_url=redis_url, env=env, timeout=wait_timeout(20))
    yield started
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def alice_token(processes: list[ServerProcess]) -> str:
    """Alice's token from process A's ``POST /token``: B accepts it (one secret, one Redis)."""
    response = httpx.post(
        processes[0].url("/token"), data={"username": "alice", "password": "wonderland"}
    )
    return response.raise_for_status().json()["access_token"]


async def recv_json(websocket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(wait_timeout()):
        return json.loads(await websocket.recv())


async def refused(url: str) -> tuple[int | None, list[str]]:
    frames: list[str] = []
    async with connect(url) as websocket:
        async with asyncio.timeout(wait_timeout()):
            with contextlib.suppress(ConnectionClosed):
                while True:
                    frames.append(str(await websocket.recv()))
        return websocket.close_code, frames


@asynccontextmanager
async def member(url: str) -> AsyncIterator[ClientConnection]:
    async with connect(url) as websocket:
        while (await recv_json(websocket))["type"] != "join":
            pass
        yield websocket


async def users(server: ServerProcess, room: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        return (await client.get(server.url(f"/rooms/{room}/users"))).json()["users"]


async def test_an_impostor_on_b_leaves_the_real_alices_seat_on_a_untouched(
    processes: list[ServerProcess], alice_token: str
) -> None:
    a, b = processes
    async with member(a.ws(f"/chat/across/alice?token={alice_token}")) as alice:
        code, frames = await refused(b.ws("/chat/across/alice"))
        await alice.send(json.dumps({"type": "message", "content": "still me"}))
        # Her own message is the next thing she hears: no impostor joined, none posted.
        assert (await recv_json(alice))["content"] == "still me"
        assert await users(b, "across") == ["alice"]
    assert (code, frames) == (IMPOSTOR, [])


async def test_an_anonymous_alice_on_b_gets_no_private_message_sent_to_alice(
    processes: list[ServerProcess], alice_token: str
) -> None:
    a, b = processes
    async with connect(a.ws(f"/ws/users/alice?token={alice_token}")) as alice:
        code, frames = await refused(b.ws("/ws/users/alice"))
        async with connect(b.ws("/ws/users/ben")) as ben:
            await ben.send(json.dumps({"type": "private_message", "to": "alice", "message": "pw"}))
            async with asyncio.timeout(wait_timeout()):
                while (frame := await alice.recv()) != "From ben: pw":
                    assert frame == "ben joined!"
    assert (code, frames) == (IMPOSTOR, [])


async def test_the_signed_in_alice_joins_on_b_with_as_token_from_a(
    processes: list[ServerProcess], alice_token: str
) -> None:
    async with member(processes[1].ws(f"/chat/signed/alice?token={alice_token}")) as alice:
        await alice.send(json.dumps({"type": "message", "content": "hi"}))
        assert (await recv_json(alice))["username"] == "alice"


async def test_an_anonymous_lobby_alice_on_b_is_closed_4003(
    processes: list[ServerProcess],
) -> None:
    async with connect(processes[1].ws("/ws/lobby")) as impostor:
        await impostor.send(json.dumps({"type": "join", "room": "across", "name": "alice"}))
        async with asyncio.timeout(wait_timeout()):
            await impostor.wait_closed()
    assert impostor.close_code == IMPOSTOR


@pytest.mark.parametrize(
    ("name", "code"),
    [("\u0430lice", 1008), ("\u3164", 1008), ("\uff41\uff4c\uff49\uff43\uff45", IMPOSTOR)],
)
async def test_deceptive_names_and_fullwidth_alice_are_refused_on_b_too(
    processes: list[ServerProcess], name: str, code: int
) -> None:
    assert (await refused(processes[1].ws(f"/chat/across/{quote(name)}")))[0] == code


async def test_a_broadcast_flood_on_b_reaches_a_no_faster_than_bs_limit(
    processes: list[ServerProcess],
) -> None:
    a, b = processes
    async with connect(a.ws("/ws/broadcast")) as bystander, connect(b.ws("/ws/broadcast")) as flood:
        began = time.monotonic()
        with contextlib.suppress(ConnectionClosed):
            for _ in range(300):
                await flood.send("spam")
        seconds = time.monotonic() - began
        async with asyncio.timeout(wait_timeout()):
            await flood.wait_closed()
            relayed = 0
            while (frame := await bystander.recv()) != "A user left the chat":
                relayed += frame == "Someone said: spam"
    print(f"/ws/broadcast via Redis: {relayed} relayed of 300 in {seconds:.3f} s")
    assert flood.close_code == 1008
    assert relayed <= 2 * RATE + RATE * seconds + 1
