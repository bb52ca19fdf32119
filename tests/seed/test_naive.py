"""The seed's managers (``course_server.seed.naive``) really fail the way lesson 03 says they do.

These tests pin the failures down, so the lesson's live demonstrations cannot silently stop
demonstrating anything (after an upgrade of uvicorn or Starlette, say).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect

from course_server import RunningServer, Settings, start
from course_server.clients import misbehave
from course_server.lab import failures, latency, mutation
from course_server.lab.stand_ins import FakeSocket
from course_server.seed import naive

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def dead_client_run() -> failures.DeadClientRun:
    """The dead-client scenario in the naive room, run once for the tests that read it."""
    with start(name=f"test-{__name__}", settings=Settings()) as server:
        return asyncio.run(failures.dead_client(server, "/naive/ws/broadcast"))


async def test_the_naive_room_works_when_everyone_behaves(server: RunningServer) -> None:
    url = server.ws("/naive/ws/broadcast")
    async with asyncio.timeout(wait_timeout()), connect(url) as first, connect(url) as second:
        await first.send("hi")
        assert await first.recv() == "Someone said: hi"
        assert await second.recv() == "Someone said: hi"


async def test_naive_private_messages_work_when_everyone_behaves(server: RunningServer) -> None:
    async with (
        asyncio.timeout(wait_timeout()),
        connect(server.ws("/naive/ws/users/alice")) as alice,
        connect(server.ws("/naive/ws/users/bob")) as bob,
    ):
        assert await alice.recv() == "bob joined!"
        await bob.send(json.dumps({"type": "private_message", "to": "alice", "message": "hi"}))
        assert await alice.recv() == "From bob: hi"


def test_a_dead_client_kills_the_senders_connection(
    dead_client_run: failures.DeadClientRun,
) -> None:
    sender = dead_client_run.heard["sender"]
    assert sender.messages == []
    assert sender.close_code == 1006  # dropped without a close frame


def test_a_dead_client_makes_the_clients_after_it_miss_the_message(
    dead_client_run: failures.DeadClientRun,
) -> None:
    heard = dead_client_run.heard
    assert "Someone said: hello" in heard["first"].messages  # before the ghost in the list
    assert "Someone said: hello" not in heard["second"].messages  # after it


def test_a_dead_client_makes_the_senders_endpoint_raise(
    dead_client_run: failures.DeadClientRun,
) -> None:
    [error] = dead_client_run.server_log
    assert error.message == "Exception in ASGI application"
    assert error.raised[-1].startswith("WebSocketDisconnected")
    assert error.raised[-1].endswith("in naive.broadcast()")


async def test_a_stalled_client_stalls_the_whole_naive_room(server: RunningServer) -> None:
    url = server.ws("/naive/ws/broadcast")
    with misbehave.server_errors():  # the clean-up makes the naive room raise: not this test
        stalled = await misbehave.stalled_reader(url)
        result = await latency.probe(url, messages=100, size=60_000, interval=0, grace=0.5)
        stalled.vanish()
        await misbehave.settled(server, timeout=wait_timeout())
    assert result.sent == result.planned  # the sender was never told anything was wrong
    assert all(r.received < result.planned for r in result.receivers)


# A disconnect during a broadcast, without a server


async def test_leaving_during_a_list_broadcast_skips_a_client_silently() -> None:
    sockets = [FakeSocket(name) for name in "abcd"]
    sockets[1].pause = True
    outcome = await mutation.leave_during_broadcast(
        naive.ConnectionManager(), sockets, slow=sockets[1], leaver=sockets[0]
    )
    assert outcome == "completed"
    assert [s.received for s in sockets] == [["hello"], ["hello"], [], ["hello"]]


async def test_leaving_during_a_set_broadcast_raises() -> None:
    sockets = [FakeSocket(name) for name in "abcd"]
    sockets[1].pause = True
    outcome = await mutation.leave_during_broadcast(
        mutation.SetConnectionManager(), sockets, slow=sockets[1], leaver=sockets[0]
    )
    assert outcome == "RuntimeError: Set changed size during iteration"
