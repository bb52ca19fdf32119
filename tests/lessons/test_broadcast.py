"""Lesson 03's endpoints done right (``course_server.lessons.broadcast``), from real clients.

``/ws/broadcast`` and ``/ws/users/{user_id}`` per the spec's endpoint table, and the failures
the naive version shows (``test_naive.py``) not happening here.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect

from course_server import RunningServer, Settings
from course_server.clients import misbehave
from course_server.lab import failures

pytestmark = pytest.mark.anyio

QUEUE_SIZE = 8


@pytest.fixture
def settings() -> Settings:
    """A small send queue, so a stalled client is cut off after little data."""
    return Settings(jwt_secret="test-secret-not-for-production", send_queue_size=QUEUE_SIZE)


async def recv(websocket: ClientConnection) -> str | bytes:
    async with asyncio.timeout(wait_timeout()):
        return await websocket.recv()


async def users_online(server: RunningServer) -> list[str]:
    """The user directory as the server sees it, read on the server's own loop."""

    async def online() -> list[str]:
        return server.app.state.broadcast.users.online()

    return await asyncio.to_thread(server.call, online())


# /ws/broadcast


async def test_a_message_reaches_every_client_including_the_sender(server: RunningServer) -> None:
    url = server.ws("/ws/broadcast")
    async with connect(url) as first, connect(url) as second:
        await first.send("hi")
        assert await recv(first) == "Someone said: hi"
        assert await recv(second) == "Someone said: hi"


async def test_the_others_hear_when_a_user_leaves(server: RunningServer) -> None:
    url = server.ws("/ws/broadcast")
    async with connect(url) as stays:
        async with connect(url):
            pass
        assert await recv(stays) == "A user left the chat"


async def test_a_binary_frame_is_refused_with_1003(server: RunningServer) -> None:
    seen = await close_after_sending(server.ws("/ws/broadcast"), b"\x00")
    assert seen == (1003, "text frames only")


async def close_after_sending(url: str, frame: str | bytes) -> tuple[int | None, str | None]:
    async with asyncio.timeout(wait_timeout()), connect(url) as websocket:
        await websocket.send(frame)
        await websocket.wait_closed()
        return websocket.close_code, websocket.close_reason


async def test_a_dead_client_is_pruned_without_disturbing_the_sender(
    server: RunningServer,
) -> None:
    run = await failures.dead_client(server, "/ws/broadcast")
    expected = ["Someone said: hello", "A user left the chat"]
    assert {name: heard.messages for name, heard in run.heard.items()} == {
        "first": expected,
        "second": expected,
        "sender": expected,
    }
    assert run.heard["sender"].close_code is None
    assert run.server_log == []


async def test_a_stalled_client_is_cut_off_with_4008_while_the_others_get_everything(
    unlimited_server: RunningServer,
) -> None:
    url = unlimited_server.ws("/ws/broadcast")
    count, text = 100, "x" * 60_000  # ~6 MB: more than the stalled client's buffers can hold
    stalled = await misbehave.stalled_reader(url)
    async with stalled, connect(url, max_size=None) as sender, connect(url, max_size=None) as other:

        async def receive_all(websocket: ClientConnection) -> int:
            got = 0
            async with asyncio.timeout(wait_timeout(10)):
                while got < count:
                    got += (await websocket.recv()).startswith("Someone said: x")
            return got

        receiving = asyncio.gather(receive_all(sender), receive_all(other))
        for _ in range(count):
            await sender.send(text)
        assert await receiving == [count, count]
        resumed = await stalled.resume(timeout=wait_timeout())
    assert (resumed.close_code, resumed.close_reason) == (4008, "slow consumer")
    assert resumed.messages < count


# /ws/users/{user_id}


async def test_a_private_message_reaches_every_device_of_the_recipient(
    server: RunningServer,
) -> None:
    async with (
        connect(server.ws("/ws/users/ana")) as phone,
        connect(server.ws("/ws/users/ana")) as laptop,
        connect(server.ws("/ws/users/ben")) as ben,
    ):
        assert [await recv(phone), await recv(laptop)] == ["ben joined!", "ben joined!"]
        await ben.send(json.dumps({"type": "private_message", "to": "ana", "message": "hi"}))
        assert await recv(phone) == "From ben: hi"
        assert await recv(laptop) == "From ben: hi"


async def test_other_users_hear_who_joined_but_the_newcomer_does_not(
    server: RunningServer,
) -> None:
    async with connect(server.ws("/ws/users/ana")) as ana:
        async with connect(server.ws("/ws/users/ben")) as ben:
            assert await recv(ana) == "ben joined!"
            await ana.send(json.dumps({"type": "private_message", "to": "ben", "message": "?"}))
            assert await recv(ben) == "From ana: ?"  # nothing came before it


async def test_an_invalid_private_message_gets_an_error_and_the_connection_stays(
    server: RunningServer,
) -> None:
    async with connect(server.ws("/ws/users/ana")) as ana:
        await ana.send('{"type": "private_message", "to": "ben"}')
        error = json.loads(await recv(ana))
        assert error == {
            "type": "error",
            "code": "invalid_message",
            "message": "message: Field required",
        }
        await ana.send(json.dumps({"type": "private_message", "to": "ana", "message": "me"}))
        assert await recv(ana) == "From ana: me"


async def test_a_user_entry_lives_while_a_device_does_and_is_freed_with_the_last(
    server: RunningServer,
) -> None:
    phone = await connect(server.ws("/ws/users/ana"))
    async with connect(server.ws("/ws/users/ana")):
        assert await users_online(server) == ["ana"]
        await phone.close()
        async with asyncio.timeout(wait_timeout()):
            await misbehave.settled(server, remaining=1)
        assert await users_online(server) == ["ana"]
    async with asyncio.timeout(wait_timeout()):
        await misbehave.settled(server)
    assert await users_online(server) == []
