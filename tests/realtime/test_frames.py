"""``course_server.realtime.frames``: a broadcast framed once, written straight to each socket.

Three layers: ``Framed`` alone; a ``Peer`` given a fake ``write_frame`` (when it may take the
fast path, and that order, backpressure and the cut-off hold either way); and the real server,
where the tests fail loudly if a uvicorn upgrade moves what ``FrameWriter`` relies on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from conftest import eventually, wait_timeout
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from course_server import RunningServer, Settings, start
from course_server.realtime.closecodes import CloseCode
from course_server.realtime.fanout import Group, Peer, PeerState
from course_server.realtime.frames import EXTENSION, Framed, FrameWriter, frame_writer
from course_server.runner import SansIOProtocol

pytestmark = pytest.mark.anyio


def parsed(wire: bytes) -> Frame:
    """Parse ``wire`` the way a client does (server frames are unmasked)."""
    reader = StreamReader()
    reader.feed_data(wire)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("an incomplete frame")


# Framed


def test_a_text_message_is_framed_as_one_unmasked_text_frame() -> None:
    frame = parsed(Framed("héllo " * 30).wire)  # > 125 bytes: the 16-bit length form
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, ("héllo " * 30).encode())


def test_a_bytes_message_is_framed_as_a_binary_frame() -> None:
    frame = parsed(Framed(b"\x00\x01").wire)
    assert (frame.opcode, frame.data) == (Opcode.BINARY, b"\x00\x01")


def test_a_message_is_framed_once_however_many_receivers_write_it() -> None:
    framed = Framed("once")
    assert framed.wire is framed.wire


# A Peer with a fast path


class Socket:
    """A fake WebSocket whose scope offers ``write_frame``; both paths record in one list.

    ``full`` plays a client whose buffers are full: ``write_frame`` refuses and the ASGI send
    waits until it is cleared.
    """

    def __init__(self) -> None:
        self.frames: list[tuple[str, str | bytes]] = []  # (path taken, what arrived)
        self.full = False
        self.room = asyncio.Event()
        self.room.set()
        self.sending = asyncio.Event()
        self.closed_with: tuple[int, str | None] | None = None
        self.scope: dict[str, Any] = {"extensions": {EXTENSION: self.write_frame}}

    def write_frame(self, wire: bytes) -> bool:
        if self.full:
            return False
        self.frames.append(("direct", parsed(wire).data.decode()))
        return True

    def fill(self) -> None:
        self.full = True
        self.room.clear()

    def drain(self) -> None:
        self.full = False
        self.room.set()

    async def send_text(self, data: str) -> None:
        self.sending.set()
        await self.room.wait()
        self.frames.append(("asgi", data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed_with = (code, reason)


async def idle_peer(socket: Socket, **options: Any) -> Peer:
    """A started peer whose writer has run once and sleeps, waiting for frames."""
    peer = Peer(socket, **options)  # type: ignore[arg-type]
    peer.start()
    await asyncio.sleep(0)  # one loop turn: the new writer finds nothing queued and sleeps
    return peer


def test_a_websocket_without_the_extension_has_no_frame_writer() -> None:
    assert frame_writer(object()) is None
    assert frame_writer(type("Ws", (), {"scope": {"extensions": {}}})()) is None


async def test_an_idle_peer_writes_a_broadcast_straight_to_its_socket() -> None:
    socket = Socket()
    peer = await idle_peer(socket)
    group = Group()
    group.add(peer)
    assert group.broadcast({"n": 1}) == 1
    assert socket.frames == [("direct", '{"n":1}')]  # written by the call itself: no task ran
    assert peer.queued == 0
    await peer.aclose()


async def test_a_full_client_gets_its_frames_queued_then_in_order() -> None:
    socket = Socket()
    peer = await idle_peer(socket)
    peer.send("a")
    socket.fill()
    peer.send("b")  # refused by write_frame: queued; the writer takes it, then waits for room
    async with asyncio.timeout(wait_timeout()):
        await socket.sending.wait()
    socket.full = False  # room again, but the writer still holds "b": "c" must not overtake
    peer.send("c")
    socket.drain()
    await eventually(lambda: len(socket.frames) >= 3)
    assert socket.frames == [("direct", "a"), ("asgi", "b"), ("direct", "c")]
    await peer.aclose()


async def test_a_full_client_is_still_cut_off_with_4008() -> None:
    socket = Socket()
    peer = await idle_peer(socket, queue_size=2)
    socket.fill()
    assert peer.send("held by the writer")
    async with asyncio.timeout(wait_timeout()):
        await socket.sending.wait()
    assert peer.send("queued 1") and peer.send("queued 2")
    assert not peer.send("one too many")
    socket.drain()
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert socket.closed_with == (CloseCode.SLOW_CONSUMER, "slow consumer")
    assert peer.state is PeerState.CLOSED


async def test_a_closing_peer_writes_nothing_more_directly() -> None:
    socket = Socket()
    peer = await idle_peer(socket)
    peer.close(4000, "bye")
    assert not peer.send("after the close")
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert socket.frames == []


# The server's half: FrameWriter on uvicorn's sans-I/O protocol


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing


def protocol() -> Any:
    """The course's protocol class, built as uvicorn builds it per connection (in a loop)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never called here
        raise AssertionError

    proto: Any = SansIOProtocol(config=Config(app), server_state=ServerState(), app_state={})
    proto.transport = Transport()
    return proto


async def test_uvicorn_still_offers_what_frame_writer_uses() -> None:
    """If this fails, a uvicorn upgrade moved the attributes ``frames._UvicornSansIO`` names."""
    proto = protocol()
    assert isinstance(proto, FrameWriter)
    assert isinstance(proto.conn, ServerProtocol)
    assert callable(proto.handle_connect)
    assert callable(proto.pause_writing) and callable(proto.resume_writing)


async def test_write_frame_waits_for_an_open_connection() -> None:
    proto = protocol()
    assert proto.conn.state is State.CONNECTING
    assert not proto.write_frame(b"\x81\x00")
    assert proto.transport.written == []


async def test_write_frame_refuses_while_the_transport_is_paused() -> None:
    proto = protocol()
    proto.conn.state = State.OPEN
    proto.pause_writing()
    assert not proto.write_frame(b"\x81\x00")
    proto.resume_writing()
    assert proto.write_frame(b"\x81\x00")
    assert proto.transport.written == [b"\x81\x00"]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every frame the server wrote through ``write_frame``."""
    written: list[bytes] = []
    original = FrameWriter.write_frame

    def write_frame(self: FrameWriter, frame: bytes) -> bool:
        done = original(self, frame)
        if done:
            written.append(frame)
        return done

    monkeypatch.setattr(FrameWriter, "write_frame", write_frame)
    return written


def serve(settings: Settings, name: str) -> Iterator[RunningServer]:
    running = start(name=name, settings=replace(settings, rate_limit=0))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def plain_server(settings: Settings) -> Iterator[RunningServer]:
    yield from serve(replace(settings, ws_deflate=False), "frames-plain")


@pytest.fixture
def deflate_server(settings: Settings) -> Iterator[RunningServer]:
    yield from serve(replace(settings, ws_deflate=True), "frames-deflate")


async def chat_round(server: RunningServer) -> dict[str, Any]:
    """Ada and Ben join a room; Ada says hi; what Ben receives."""
    url = server.ws_url + "/chat/frames/"
    async with connect(url + "ada") as ada, connect(url + "ben") as ben:
        await ada.send(json.dumps({"type": "message", "content": "hi"}))
        return await message_in(ben)


async def message_in(client: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(wait_timeout()):
        while True:
            frame: dict[str, Any] = json.loads(await client.recv())
            if frame["type"] == "message":
                return frame


async def test_the_course_server_writes_a_broadcast_straight_to_the_socket(
    plain_server: RunningServer, counted: list[bytes]
) -> None:
    frame = await chat_round(plain_server)
    assert frame["content"] == "hi"
    assert any(b'"content":"hi"' in wire for wire in counted)


async def test_a_receiver_with_deflate_takes_the_asgi_path(
    deflate_server: RunningServer, counted: list[bytes]
) -> None:
    frame = await chat_round(deflate_server)  # websockets' client offers deflate by default
    assert frame["content"] == "hi"
    assert counted == []
