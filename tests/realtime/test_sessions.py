"""The session registry: the server says goodbye to every open WebSocket with 1001."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from conftest import eventually, wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server import RunningServer

pytestmark = pytest.mark.anyio


async def _sessions(server: RunningServer) -> int:
    async def count() -> int:
        return len(server.app.state.sessions)

    return await asyncio.to_thread(server.call, count())


async def test_open_websockets_are_tracked_and_released(server: RunningServer) -> None:
    async with connect(server.ws("/ws/echo")) as websocket:
        await websocket.send("hi")
        await websocket.recv()
        assert await _sessions(server) == 1

    async def released() -> bool:
        return await _sessions(server) == 0

    await eventually(released)


async def test_close_all_sends_the_code_and_reason_to_every_client(
    server: RunningServer,
) -> None:
    clients = [await connect(server.ws("/ws/echo")) for _ in range(3)]
    for client in clients:  # a round trip each: every session is accepted
        await client.send("ping")
        await client.recv()
    closed = await asyncio.to_thread(
        server.call, server.app.state.sessions.close_all(1001, "maintenance")
    )
    assert closed == 3
    for client in clients:
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(wait_timeout()):
                await client.recv()
        assert info.value.rcvd is not None
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1001, "maintenance")
    assert await _sessions(server) == 0


async def test_refused_handshakes_are_not_tracked(server: RunningServer) -> None:
    with pytest.raises(Exception, match="403"):
        async with connect(server.ws("/ws/echo"), origin="http://evil.example"):
            pass
    assert await _sessions(server) == 0


async def test_stop_ends_open_event_streams_cleanly(server: RunningServer) -> None:
    """An endless SSE stream must not hold shutdown for uvicorn's whole graceful timeout.

    No ``Accept: text/event-stream`` here on purpose: curl and friends do not send it either.
    """
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        async with client.stream(
            "GET", server.url("/events"), params={"interval": 0.05}
        ) as response:
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("data"):
                    break
            await asyncio.to_thread(server.stop)
            async for _ in lines:  # the body ends with a proper last chunk: no error here
                pass
    streams = server.app.state.sse_streams
    assert (streams.active, streams.finished) == (0, 1)
