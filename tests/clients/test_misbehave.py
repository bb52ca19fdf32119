"""The lesson 03 tools: misbehaving clients, the server-side watchers, the latency probe."""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from course_server import RunningServer
from course_server.clients import misbehave
from course_server.lab import latency

pytestmark = pytest.mark.anyio


async def test_a_stalled_reader_reads_nothing_until_resumed(server: RunningServer) -> None:
    stalled = await misbehave.stalled_reader(server.ws("/ws/users/carol"))
    async with stalled, connect(server.ws("/ws/users/ana")):
        await asyncio.to_thread(server.stop)  # closes carol with 1001, behind "ana joined!"
        resumed = await stalled.resume(timeout=wait_timeout())
    assert (resumed.messages, resumed.close_code) == (1, 1001)


async def test_a_refused_handshake_raises(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await misbehave.RawClient.connect(server.ws("/no/such/endpoint"))
    assert refused.value.response.status_code == 403


async def test_a_vanished_client_is_noticed_as_gone(server: RunningServer) -> None:
    url = server.ws("/ws/broadcast")
    async with asyncio.timeout(wait_timeout()), connect(url) as stays:
        ghost = await misbehave.RawClient.connect(url)
        ghost.vanish()
        assert await stays.recv() == "A user left the chat"


async def test_server_busy_holds_the_servers_loop_until_the_block_ends(
    server: RunningServer,
) -> None:
    url = server.ws("/ws/broadcast")
    async with asyncio.timeout(wait_timeout()), connect(url) as websocket:
        async with misbehave.server_busy(server):
            await websocket.send("while busy")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(websocket.recv(), 0.2)
        assert await websocket.recv() == "Someone said: while busy"


def test_server_errors_collects_warnings_and_errors_instead_of_printing_them() -> None:
    logger = logging.getLogger("uvicorn.error")
    with misbehave.server_errors() as errors:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it broke")
        logger.info("not collected")
    assert [str(e) for e in errors] == ["ERROR: it broke\n  ValueError: boom"]


async def test_the_probe_sees_every_message_in_a_room_that_works(server: RunningServer) -> None:
    result = await latency.probe(server.ws("/ws/broadcast"), receivers=2, messages=10, size=100)
    assert result.sent == 10
    assert result.everyone_got_everything
    assert all(r.percentile(50) >= 0 for r in result.receivers)
    assert result.table().splitlines()[1].split()[:2] == ["1", "10/10"]
