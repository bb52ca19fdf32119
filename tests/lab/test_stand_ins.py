"""``lab.stand_ins``: what the fakes lessons 03 to 05 and the room tests hand to I/O-free code."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import WebSocketDisconnect

from course_server.lab.stand_ins import FakePeer, FakeSocket, GoneSocket
from course_server.realtime.fanout import PeerState

pytestmark = pytest.mark.anyio


async def test_a_fake_socket_records_text_and_json_in_order() -> None:
    socket = FakeSocket("ada")
    await socket.send_text("one")
    await socket.send_json({"n": 2})
    assert socket.received == ["one", {"n": 2}]


async def test_a_fake_socket_lets_other_tasks_run_during_a_send() -> None:
    socket, ran = FakeSocket("ada"), []

    async def other() -> None:
        ran.append("other")

    task = asyncio.ensure_future(other())
    await socket.send_text("hello")
    assert ran == ["other"]  # it ran inside the send, as it could during a real write
    await task


async def test_a_paused_fake_socket_waits_in_its_send_until_resumed() -> None:
    socket = FakeSocket("slow", pause=True)
    send = asyncio.ensure_future(socket.send_text("hello"))
    await socket.sending.wait()
    assert not send.done()
    socket.resume()
    await send
    assert socket.received == ["hello"]


async def test_a_gone_socket_raises_the_disconnect_and_records_nothing() -> None:
    socket = GoneSocket("ghost")
    with pytest.raises(WebSocketDisconnect):
        await socket.send_json({"n": 1})
    assert socket.received == []


def test_a_fake_peer_keeps_each_frame_decoded_and_a_close() -> None:
    peer = FakePeer()
    assert peer.send({"type": "message", "content": "hi"}) is True
    peer.close(1001, "bye")
    assert peer.take() == [{"type": "message", "content": "hi"}]
    assert peer.take() == []
    assert (peer.state, peer.closed) == (PeerState.CLOSING, (1001, "bye"))
