"""Lesson 05's lobby (``WS /ws/lobby``), driven by real clients, and the seed's naive version."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import httpx
import pytest
from conftest import wait_timeout
from fastapi import WebSocketDisconnect
from lobby_clients import JOINED, LEFT, Client, presence
from websockets.asyncio.client import connect

from course_server import RunningServer, Settings, start
from course_server.lab.stand_ins import FakeSocket, GoneSocket
from course_server.lessons.lobby import RoomManager
from course_server.realtime.fanout import Peer, PeerState
from course_server.seed.rooms import SeedRoomManager

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def clients(server: RunningServer, count: int) -> AsyncIterator[list[Client]]:
    async with AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(connect(server.ws("/ws/lobby"))) for _ in range(count)
        ]
        yield [Client(ws) for ws in sockets]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningServer]:
    """One server for the tests that leave no state behind (each error test starts none)."""
    with start(name="test-lobby-shared", settings=Settings()) as running:
        yield running


def lobby(server: RunningServer) -> RoomManager:
    return server.app.state.lobby


def stats(server: RunningServer) -> dict[str, int]:
    """The lobby's counts, read on the server's own loop (its objects belong to that thread)."""

    async def read() -> dict[str, int]:
        return lobby(server).stats()

    return server.call(read())


def wait_empty(server: RunningServer) -> None:
    server.call(asyncio.wait_for(lobby(server).wait_empty(), wait_timeout()))


# --- join, message, switch, leave -------------------------------------------------------------


async def test_join_answers_with_the_rooms_presence(server: RunningServer) -> None:
    async with clients(server, 1) as [ada]:
        assert await ada.join("blue") == presence("blue", 1)


async def test_join_tells_the_others_a_user_joined(server: RunningServer) -> None:
    async with clients(server, 2) as [ada, ben]:
        await ada.join("blue")
        assert await ben.join("blue") == presence("blue", 2)
        assert await ada.recv_n(2) == [JOINED, presence("blue", 2)]


async def test_message_reaches_everyone_in_the_room_sender_included(
    server: RunningServer,
) -> None:
    async with clients(server, 2) as [ada, ben]:
        await ada.join("blue")
        await ben.join("blue")
        await ada.recv_n(2)
        await ben.send(type="message", content="hi")
        assert await ada.recv() == {"type": "message", "content": "hi"}
        assert await ben.recv() == {"type": "message", "content": "hi"}


async def test_message_stays_in_its_room(server: RunningServer) -> None:
    async with clients(server, 2) as [ada, cy]:
        await ada.join("blue")
        await cy.join("green")
        await ada.send(type="message", content="for blue")
        assert await ada.recv() == {"type": "message", "content": "for blue"}
        # Had the blue message leaked, it would be queued for cy before cy's own.
        await cy.send(type="message", content="for green")
        assert await cy.recv() == {"type": "message", "content": "for green"}


async def test_joining_another_room_leaves_the_old_one(server: RunningServer) -> None:
    async with clients(server, 3) as [ada, ben, cy]:
        await ada.join("blue")
        await ben.join("blue")
        await ada.recv_n(2)
        await cy.join("green")
        await ben.send(type="join", room="green")
        assert await ben.recv_n(2) == [{"type": "left", "room": "blue"}, presence("green", 2)]
        assert await ada.recv_n(2) == [LEFT, presence("blue", 1)]
        assert await cy.recv_n(2) == [JOINED, presence("green", 2)]


async def test_switching_out_of_a_room_alone_frees_it(server: RunningServer) -> None:
    async with clients(server, 1) as [ada]:
        await ada.join("red")
        await ada.send(type="join", room="blue")
        await ada.recv_n(2)
        assert lobby(server).counts() == {"blue": 1}


async def test_rejoining_the_same_room_only_refreshes_presence(server: RunningServer) -> None:
    async with clients(server, 2) as [ada, ben]:
        await ada.join("blue")
        await ben.join("blue")
        await ada.recv_n(2)
        await ben.send(type="join", room="blue", name="ben")
        assert await ben.recv() == presence("blue", 2, ["ben"])
        assert await ada.recv() == presence("blue", 2, ["ben"])


async def test_leave_confirms_and_keeps_the_connection_open(server: RunningServer) -> None:
    async with clients(server, 1) as [ada]:
        await ada.join("blue")
        await ada.send(type="leave")
        assert await ada.recv() == {"type": "left", "room": "blue"}
        assert await ada.join("green") == presence("green", 1)


async def test_leave_tells_the_room_a_user_left(server: RunningServer) -> None:
    async with clients(server, 2) as [ada, ben]:
        await ada.join("blue")
        await ben.join("blue")
        await ada.recv_n(2)
        await ben.send(type="leave")
        assert await ada.recv_n(2) == [LEFT, presence("blue", 1)]


async def test_disconnect_tells_the_room_a_user_left(server: RunningServer) -> None:
    async with clients(server, 1) as [ada]:
        await ada.join("blue")
        async with clients(server, 1) as [ben]:
            await ben.join("blue")
            await ada.recv_n(2)
        assert await ada.recv_n(2) == [LEFT, presence("blue", 1)]


async def test_presence_names_those_who_gave_a_name(server: RunningServer) -> None:
    async with clients(server, 3) as [ada, ben, anon]:
        await ada.join("blue", name="zed")
        await ben.join("blue", name="ada")
        assert await anon.join("blue") == presence("blue", 3, ["ada", "zed"])


# --- errors: one frame back, the connection stays open ----------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "message", "content": "hi"}', "not_in_room"),
        ('{"type": "leave"}', "not_in_room"),
        ("not json", "invalid_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"room": "blue"}', "invalid_message"),
        ('{"type": "join"}', "invalid_message"),
        ('{"type": "join", "room": ""}', "invalid_message"),
        ('{"type": "message", "content": 5}', "invalid_message"),
        ("[1, 2]", "invalid_message"),
        (b"\x00binary", "binary_not_supported"),
    ],
)
async def test_bad_frame_gets_an_error_and_the_connection_stays_open(
    shared_server: RunningServer, frame: str | bytes, code: str
) -> None:
    async with clients(shared_server, 1) as [ada]:
        await ada.websocket.send(frame)
        error = await ada.recv()
        assert (error["type"], error["code"]) == ("error", code)
        assert error["message"]
        room = f"after-{code}-{len(frame)}"  # a room of its own: the server is shared
        assert await ada.join(room) == presence(room, 1)


async def test_an_error_changes_nothing_in_the_room(server: RunningServer) -> None:
    async with clients(server, 2) as [ada, ben]:
        await ada.join("blue")
        await ben.join("blue")
        await ada.recv_n(2)
        await ben.send(type="dance")
        await ben.recv()
        await ben.send(type="message", content="still here")
        assert await ada.recv() == {"type": "message", "content": "still here"}


# --- bounded memory ------------------------------------------------------------------------


async def test_rooms_are_freed_when_their_members_leave(unlimited_server: RunningServer) -> None:
    async def visit(room: str) -> None:
        async with clients(unlimited_server, 1) as [client]:
            await client.join(room)
            await client.send(type="leave")
            assert await client.recv() == {"type": "left", "room": room}

    await asyncio.gather(*(visit(f"room-{i}") for i in range(100)))
    assert stats(unlimited_server) == {"rooms": 0, "members": 0}


async def test_rooms_are_freed_when_their_members_disconnect(
    unlimited_server: RunningServer,
) -> None:
    async with clients(unlimited_server, 100) as many:
        for i, client in enumerate(many):
            await client.join(f"room-{i}")
        assert stats(unlimited_server) == {"rooms": 100, "members": 100}
    wait_empty(unlimited_server)
    assert stats(unlimited_server) == {"rooms": 0, "members": 0}


async def test_rooms_endpoint_lists_rooms_with_counts(server: RunningServer) -> None:
    async with clients(server, 3) as [ada, ben, cy]:
        await ada.join("blue")
        await ben.join("blue")
        await cy.join("green")
        async with httpx.AsyncClient() as http:
            response = await http.get(server.url("/lobby/rooms"))
        assert response.json() == {"rooms": {"blue": 2, "green": 1}}


async def test_a_room_outlives_pruned_peers_until_they_leave() -> None:
    """``Group.broadcast`` drops closed peers at once; the room still ends with the last leave."""
    manager = RoomManager()
    ada, ben, cy = (Peer(cast(Any, None)) for _ in range(3))
    for peer in (ada, ben, cy):
        manager.join(peer, "blue")
    ada.state = ben.state = PeerState.CLOSED  # gone; their endpoints have not reached `finally`
    manager.say(cy, "hi")  # prunes ada and ben from the room's group
    manager.leave(cy)
    assert manager.counts() == {"blue": 2}
    manager.leave(ada)
    manager.leave(ben)
    assert manager.stats() == {"rooms": 0, "members": 0}


# --- a disconnect in the middle of a broadcast ------------------------------------------------


@pytest.fixture
def server_errors() -> Iterator[list[logging.LogRecord]]:
    """Errors the server logs (uvicorn's "Exception in ASGI application", asyncio's task errors)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger("uvicorn.error"), logging.getLogger("asyncio")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


async def test_disconnect_mid_broadcast_raises_nothing_and_loses_nothing(
    unlimited_server: RunningServer, server_errors: list[logging.LogRecord]
) -> None:
    async with clients(unlimited_server, 3) as [ada, ben, cy]:
        for client in (ada, ben, cy):
            await client.join("blue")
        await ada.recv_n(4)
        await ben.recv_n(2)
        for i in range(200):
            await ada.send(type="message", content=str(i))
            if i == 20:
                cy.websocket.transport.abort()  # gone without a close frame, mid-stream
        frames = await ben.recv_n(202)  # 200 messages, plus "left" and presence in between
        messages = [f["content"] for f in frames if f["type"] == "message"]
        assert messages == [str(i) for i in range(200)]
        assert [f for f in frames if f["type"] != "message"] == [LEFT, presence("blue", 2)]
        await ada.send(type="message", content="after")
        assert (await ada.recv_n(203))[-1] == {"type": "message", "content": "after"}
    assert server_errors == []


# --- the seed's RoomManager: the bugs the lesson shows ----------------------------------------


async def test_seed_keeps_an_empty_set_for_every_room_ever_used() -> None:
    seed = SeedRoomManager()
    for i in range(200):
        ws: Any = FakeSocket()
        await seed.join_room(f"room-{i}", ws)
        await seed.leave_room(ws)
    assert len(seed.rooms) == 200
    assert all(members == set() for members in seed.rooms.values())


async def test_seed_broadcast_fails_when_someone_joins_mid_loop() -> None:
    seed = SeedRoomManager()
    a, b, c = FakeSocket(), FakeSocket(), FakeSocket()
    await seed.join_room("blue", a)  # type: ignore[arg-type]
    await seed.join_room("blue", b)  # type: ignore[arg-type]
    results = await asyncio.gather(
        seed.broadcast_to_room("blue", {"type": "message", "content": "hi"}),
        seed.join_room("blue", c),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert isinstance(results[0], RuntimeError)
    assert str(results[0]) == "Set changed size during iteration"


async def test_seed_broadcast_raises_the_dead_clients_disconnect() -> None:
    seed = SeedRoomManager()
    await seed.join_room("blue", GoneSocket())  # type: ignore[arg-type]
    with pytest.raises(WebSocketDisconnect):
        await seed.broadcast_to_room("blue", {"type": "message", "content": "hi"})
