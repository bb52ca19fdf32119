"""Fault suite (lesson 09): clients that vanish mid-broadcast, a client that stops reading.

Half of a room resets its TCP connections (no close frame) while messages are being fanned out:
the other half still gets every message, in order, and the server logs nothing. A member that
stops reading is cut off with 4008 when its queue overflows; nobody else notices.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from conftest import eventually, wait_timeout
from websockets.asyncio.client import ClientConnection, connect

from course_server import RunningServer, Settings, start
from course_server.clients.misbehave import RawClient, server_busy, server_errors, stalled_reader
from course_server.realtime.fanout import PeerState

pytestmark = pytest.mark.anyio


@pytest.fixture
def fast() -> Iterator[RunningServer]:
    """No rate limit (one sender plays a busy room) and a short queue of 16 frames."""
    settings = Settings(
        jwt_secret="test-secret-not-for-production", rate_limit=0, send_queue_size=16
    )
    with start(name="faults", settings=settings) as server:
        yield server


def users(server: RunningServer) -> list[str]:
    return server.app.state.chat_rooms.users("general")


async def joined(server: RunningServer, name: str) -> ClientConnection:
    """A member of ``general`` that has read up to its own join."""
    websocket = await connect(server.ws(f"/chat/general/{name}"), max_queue=None)
    async with asyncio.timeout(wait_timeout()):
        while True:
            frame = json.loads(await websocket.recv())
            if frame["type"] == "join" and frame["username"] == name:
                return websocket


async def messages(websocket: ClientConnection, count: int) -> list[str]:
    """The content of the next ``count`` messages (joins and leaves skipped)."""
    found: list[str] = []
    async with asyncio.timeout(wait_timeout(10)):
        while len(found) < count:
            frame = json.loads(await websocket.recv())
            if frame["type"] == "message":
                found.append(frame["content"])
    return found


def say(text: str) -> str:
    return json.dumps({"type": "message", "content": text})


async def test_half_the_room_vanishing_mid_broadcast_costs_the_rest_nothing(
    fast: RunningServer,
) -> None:
    with server_errors() as log:
        healthy = [await joined(fast, f"reader{n}") for n in range(4)]
        ghosts = [await RawClient.connect(fast.ws(f"/chat/general/ghost{n}")) for n in range(4)]
        await eventually(lambda: len(users(fast)) == 8)
        sender = healthy[0]
        sent = [f"m{n}" for n in range(60)]
        for text in sent[:20]:
            await sender.send(say(text))
        # While the server's loop is held, 20 more messages and 4 resets arrive together: the
        # room fans the messages out to peers whose sockets are already dead.
        async with server_busy(fast):
            for text in sent[20:40]:
                await sender.send(say(text))
            for ghost in ghosts:
                ghost.vanish()
        for text in sent[40:]:
            await sender.send(say(text))
        received = [await messages(client, len(sent)) for client in healthy]
        await eventually(lambda: len(users(fast)) == 4)
        for client in healthy:
            await client.close()
        await eventually(lambda: len(fast.app.state.sessions) == 0)
    assert received == [sent] * len(healthy)
    assert [str(error) for error in log] == []


async def test_a_member_that_stops_reading_is_cut_off_with_4008_alone(
    fast: RunningServer,
) -> None:
    stalled = await stalled_reader(fast.ws("/chat/general/stalled"))
    healthy = [await joined(fast, f"reader{n}") for n in range(3)]
    sender = healthy[0]

    async def cut_off() -> bool:
        peer = fast.app.state.chat_rooms.get("general").members.get("stalled")
        return peer is None or peer.state is not PeerState.OPEN

    # Big messages fill the stalled member's buffers fast; then its queue of 16 overflows.
    sent = [f"{n} " + "x" * 1990 for n in range(2500)]
    # The healthy members read all along (the sender too: it hears its own messages), so only
    # the stalled one falls behind; the send loop yields to them after every frame.
    readers = [asyncio.create_task(messages(client, len(sent))) for client in healthy]
    with server_errors() as log:
        for text in sent:
            await sender.send(say(text))
            await asyncio.sleep(0)  # a yield to the readers, not a wait for anything
        await eventually(lambda: fast.call(cut_off()))
        # Read now: the server waits a moment for the cut-off client to take its close frame.
        resumed = await stalled.resume(timeout=wait_timeout())
        received = [await reader for reader in readers]
        await eventually(lambda: users(fast) == ["reader0", "reader1", "reader2"])
        for client in healthy:
            await client.close()
        await eventually(lambda: len(fast.app.state.sessions) == 0)
    assert (resumed.close_code, resumed.close_reason) == (4008, "slow consumer")
    assert resumed.messages < len(sent)
    assert received == [sent] * len(healthy)
    assert [str(error) for error in log] == []
