"""Lesson 03's broadcast and private messages across two processes sharing one Redis.

The source chapter's example: a user on server 1 messages a user on server 2. Servers "A" and
"B" run in threads of this process; all they share is what goes through Redis.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect

from course_server import RunningServer

pytestmark = pytest.mark.anyio


async def recv(websocket: ClientConnection) -> str:
    async with asyncio.timeout(wait_timeout()):
        return str(await websocket.recv())


async def settled(websocket: ClientConnection, user_id: str) -> None:
    """A message to oneself: once it is back, the user's "joined!" has gone through Redis too."""
    await websocket.send(json.dumps({"type": "private_message", "to": user_id, "message": "."}))
    assert await recv(websocket) == f"From {user_id}: ."


async def test_a_broadcast_on_one_process_reaches_clients_of_both(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with connect(a.ws("/ws/broadcast")) as ana, connect(b.ws("/ws/broadcast")) as ben:
        await ana.send("hello, both processes")
        assert await ben.recv() == "Someone said: hello, both processes"
        assert await ana.recv() == "Someone said: hello, both processes"


async def test_a_leave_on_one_process_is_heard_on_the_other(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with connect(a.ws("/ws/broadcast")) as ana:
        async with connect(b.ws("/ws/broadcast")) as ben:
            await ben.send("bye")  # once it comes back to ana, ben is surely connected
            heard = await recv(ana)
            while heard == "A user left the chat":  # the test before's leavers, relayed late
                heard = await recv(ana)
            assert heard == "Someone said: bye"
        assert await recv(ana) == "A user left the chat"


async def test_a_private_message_reaches_every_device_of_the_user_on_any_process(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with (
        connect(b.ws("/ws/users/ben")) as bob_phone,
        connect(a.ws("/ws/users/ben")) as bob_laptop,
        connect(a.ws("/ws/users/ana")) as ana,
    ):
        assert await recv(bob_phone) == "ana joined!"
        assert await recv(bob_laptop) == "ana joined!"
        await ana.send(json.dumps({"type": "private_message", "to": "ben", "message": "psst"}))
        assert await recv(bob_phone) == "From ana: psst"
        assert await recv(bob_laptop) == "From ana: psst"


async def test_a_joined_notice_reaches_other_users_on_the_other_process_only(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with connect(b.ws("/ws/users/carol")) as carol:
        await settled(carol, "carol")
        async with connect(a.ws("/ws/users/dave")) as dave:
            assert await recv(carol) == "dave joined!"
            await settled(dave, "dave")  # and no "dave joined!" before it
