"""Graceful shutdown (lesson 09): every socket gets 1001 and a reason, after what was queued for it.

A ``Peer`` queues frames and a writer task sends them. A close frame sent straight through ASGI
would overtake the frames still in that queue; ``peers.Peers.close_all`` (run first by
``runner.CourseServer.shutdown``) queues each close behind them instead.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import eventually, wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server import RunningServer, Settings, start
from course_server.clients.misbehave import stalled_reader
from course_server.realtime.fanout import Peer, PeerState

pytestmark = pytest.mark.anyio

FRAME = "x" * 32_768
FRAMES = 200  # 6.5 MB: more than the kernel buffers hold, fewer than the queue (256)


def peer_of(server: RunningServer, room: str, username: str) -> Peer:
    chat_room = server.app.state.chat_rooms.get(room)
    assert chat_room is not None
    return chat_room.members[username]


async def test_frames_queued_before_stop_arrive_before_the_1001(settings: Settings) -> None:
    server = start(name="shutdown-flush", settings=settings)
    try:
        reader = await stalled_reader(server.ws("/chat/general/ana"))
        await eventually(lambda: len(server.app.state.chat_rooms.users("general")) == 1)

        async def flood() -> int:
            peer = peer_of(server, "general", "ana")
            for _ in range(FRAMES):
                assert peer.send(FRAME)
            return peer.queued

        # The client reads nothing yet, so most frames are still in the peer's queue.
        assert server.call(flood()) > 0
        stopping = asyncio.ensure_future(asyncio.to_thread(server.stop))

        async def closing() -> bool:
            chat_room = server.app.state.chat_rooms.get("general")
            peer = chat_room.members.get("ana") if chat_room is not None else None
            return peer is None or peer.state is not PeerState.OPEN

        # The close is queued (behind the frames) before the client reads a single byte.
        await eventually(lambda: not server.running or server.call(closing()))
        resumed = await reader.resume(timeout=wait_timeout())
        async with asyncio.timeout(wait_timeout(15)):
            await stopping
    finally:
        server.stop()
    # Its own join, every queued frame, then the goodbye.
    assert (resumed.messages, resumed.close_code, resumed.close_reason) == (
        1 + FRAMES,
        1001,
        "Server shutting down",
    )


async def test_every_open_chat_peer_is_registered_and_released(server: RunningServer) -> None:
    peers = server.app.state.peers
    async with connect(server.ws("/chat/general/ana")), connect(server.ws("/ws/lobby")):
        await eventually(lambda: len(peers) == 2)
    await eventually(lambda: len(peers) == 0)


async def test_stop_says_1001_to_every_kind_of_endpoint(settings: Settings) -> None:
    server = start(name="shutdown-all", settings=settings)
    paths = ["/chat/general/ana", "/ws/lobby", "/ws/broadcast", "/ws/users/ben", "/ws/echo"]
    try:
        clients = [await connect(server.ws(path)) for path in paths]
        await eventually(lambda: len(server.app.state.sessions) == len(paths))
        await asyncio.to_thread(server.stop)
        codes = []
        for client in clients:
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(wait_timeout()):
                    while True:
                        await client.recv()
            codes.append((client.close_code, client.close_reason))
    finally:
        server.stop()
    assert codes == [(1001, "Server shutting down")] * len(paths)
