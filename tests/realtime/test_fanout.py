"""``course_server.realtime.fanout``: a Peer's queue, writer and cut-off; a Group's broadcast.

A fake WebSocket stands in for Starlette's: its sends wait on a gate, so a test can play a
client whose buffers are full (gate shut) or one that reads (gate open), with no sockets.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import wait_timeout
from starlette.websockets import WebSocketDisconnect

from course_server.realtime.fanout import READ_AHEAD, Group, Peer, PeerState, encode, framed
from course_server.realtime.peers import Peers

pytestmark = pytest.mark.anyio


class FakeWebSocket:
    """Records frames and the close; ``gate.clear()`` makes every send wait, like a full buffer."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.closed_with: tuple[int, str | None] | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.fail_sends = False
        self.sending = asyncio.Event()  # a send has started (and may be waiting at the gate)
        self.waiting_at_send: list[int] = []  # for each send, how many frames were queued behind
        self.peer: Peer | None = None
        self._sent = asyncio.Condition()

    async def send_text(self, data: str) -> None:
        await self._send(data)

    async def send_bytes(self, data: bytes) -> None:
        await self._send(data)

    async def _send(self, frame: str | bytes) -> None:
        self.sending.set()
        if self.peer is not None:
            self.waiting_at_send.append(self.peer.queued)
        await self.gate.wait()
        if self.fail_sends:
            raise WebSocketDisconnect(1006)
        async with self._sent:
            self.frames.append(frame)
            self._sent.notify_all()

    async def wait_frames(self, count: int) -> list[str | bytes]:
        async with asyncio.timeout(wait_timeout()), self._sent:
            await self._sent.wait_for(lambda: len(self.frames) >= count)
        return self.frames

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self.gate.wait()
        self.closed_with = (code, reason)

    async def receive(self) -> dict[str, Any]:
        message = await self.inbox.get()
        if message["type"] == "raise":
            raise RuntimeError('Cannot call "receive" once a disconnect message has been received.')
        return message

    def client_says(self, text: str) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": text})

    def client_leaves(self, code: int = 1000) -> None:
        self.inbox.put_nowait({"type": "websocket.disconnect", "code": code})

    def client_fails(self) -> None:
        """The next receive raises, as Starlette's does once the connection is unusable."""
        self.inbox.put_nowait({"type": "raise"})


async def started(websocket: FakeWebSocket, **options: Any) -> Peer:
    peer = Peer(websocket, **options)  # type: ignore[arg-type]
    peer.start()
    return peer


# Peer


async def test_send_queues_and_the_writer_delivers_in_order() -> None:
    websocket = FakeWebSocket()
    peer = await started(websocket)
    assert peer.send("one") and peer.send(b"two") and peer.send({"n": 3})
    assert await websocket.wait_frames(3) == ["one", b"two", '{"n":3}']
    await peer.aclose()


def test_encode_turns_dicts_into_compact_json_once() -> None:
    assert encode({"text": "héllo", "n": [1, 2]}) == '{"text":"héllo","n":[1,2]}'
    assert encode("as is") == "as is"


def test_framed_passes_a_framed_message_as_it_is_so_its_bytes_are_built_once() -> None:
    once = framed({"n": 1})
    assert once.data == '{"n":1}'
    assert framed(once) is once  # a lobby's or a group's frame is not wrapped again per peer
    assert once.wire is once.wire


async def test_send_never_waits_for_a_client_that_is_not_reading() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = await started(websocket, queue_size=4)
    assert all(peer.send(f"m{i}") for i in range(4))  # returns at once, no await involved
    assert websocket.frames == []
    await peer.aclose()


async def test_close_sends_the_queued_frames_before_the_close_frame() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = await started(websocket)
    peer.send("first")
    peer.send("second")
    peer.close(4000, "bye")
    assert peer.state is PeerState.CLOSING
    assert not peer.send("too late")
    websocket.gate.set()
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert websocket.frames == ["first", "second"]
    assert websocket.closed_with == (4000, "bye")
    assert peer.state is PeerState.CLOSED


async def test_overflow_cuts_the_peer_off_with_4008_and_frees_its_backlog() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = await started(websocket, queue_size=2)
    peer.send("taken by the writer")
    async with asyncio.timeout(wait_timeout()):
        await websocket.sending.wait()  # the writer holds it, stuck on the full buffer
    assert peer.queued == 0
    assert peer.send("queued 1") and peer.send("queued 2")
    assert not peer.send("one too many")
    assert peer.state is PeerState.CLOSING
    assert peer.queued == 0
    websocket.gate.set()
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert websocket.closed_with == (4008, "slow consumer")
    assert peer.close_code == 4008
    assert websocket.frames == []


async def test_a_cut_off_peer_that_never_drains_is_released_after_the_close_timeout() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = await started(websocket, queue_size=1, close_timeout=0.05)
    peer.send("a")
    peer.send("b")
    peer.send("c")
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert peer.state is PeerState.CLOSED
    assert websocket.closed_with is None  # the close frame never fitted


async def test_a_failing_send_closes_the_peer_and_calls_on_closed() -> None:
    websocket = FakeWebSocket()
    websocket.fail_sends = True
    gone: list[Peer] = []
    peer = await started(websocket, on_closed=gone.append)
    peer.send("to a client that is gone")
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert gone == [peer]
    assert not peer.send("again")


async def test_incoming_yields_messages_until_the_client_leaves() -> None:
    websocket = FakeWebSocket()
    peer = await started(websocket)
    websocket.client_says("hi")
    websocket.client_says("there")
    websocket.client_leaves(1001)
    async with asyncio.timeout(wait_timeout()):
        texts = [message["text"] async for message in peer.incoming()]
    assert texts == ["hi", "there"]
    assert peer.close_code == 1001
    assert peer.state is PeerState.CLOSED


async def test_incoming_ends_when_the_server_cuts_the_peer_off() -> None:
    websocket = FakeWebSocket()  # the client never sends nor leaves: receive() waits forever
    peer = await started(websocket, queue_size=1)

    async def read_all() -> list[dict[str, Any]]:
        return [message async for message in peer.incoming()]

    reading = asyncio.ensure_future(read_all())
    websocket.gate.clear()
    for n in range(3):
        peer.send(n)
    websocket.gate.set()
    async with asyncio.timeout(wait_timeout()):
        assert await reading == []
    assert peer.close_code == 4008


async def test_a_burst_from_one_client_reaches_each_writer_as_one_batch() -> None:
    """The endpoint handles the burst before any writer runs: a writer wakes once for it all."""
    sender_socket, receiver_socket = FakeWebSocket(), FakeWebSocket()
    sender, receiver = await started(sender_socket), await started(receiver_socket)
    receiver_socket.peer = receiver
    group = Group()
    group.add(receiver)
    for n in range(5):
        sender_socket.client_says(str(n))
    sender_socket.client_leaves()
    async with asyncio.timeout(wait_timeout()):
        async for message in sender.incoming():
            group.broadcast(message["text"])
        assert await receiver_socket.wait_frames(5) == ["0", "1", "2", "3", "4"]
    assert receiver_socket.waiting_at_send == [4, 3, 2, 1, 0]
    for peer in (sender, receiver):
        await peer.aclose()


async def test_the_reader_takes_at_most_a_sixteenth_of_the_queue_ahead() -> None:
    websocket = FakeWebSocket()
    peer = await started(websocket, queue_size=64)  # 64 // 16: 4 messages ahead at most
    for n in range(10):
        websocket.client_says(str(n))
    messages = peer.incoming()
    async with asyncio.timeout(wait_timeout()):
        assert (await anext(messages))["text"] == "0"
    assert websocket.inbox.qsize() == 10 - 4  # the other six wait in the server, as before
    await messages.aclose()
    await peer.aclose()
    assert READ_AHEAD == 16  # the most for the default queue of 256 frames


async def test_incoming_ends_when_receiving_fails() -> None:
    websocket = FakeWebSocket()
    peer = await started(websocket)
    websocket.client_says("hi")
    websocket.client_fails()
    async with asyncio.timeout(wait_timeout()):
        texts = [message["text"] async for message in peer.incoming()]
    assert texts == ["hi"]
    assert peer.state is PeerState.CLOSED


async def test_a_peer_with_nothing_to_send_keeps_no_writer_task_nor_backlog() -> None:
    websocket = FakeWebSocket()
    peer = await started(websocket)
    assert peer._writer is None  # nothing queued yet: no task, no deque (memory per peer)
    peer.send("one")
    writer = peer._writer
    assert writer is not None
    await websocket.wait_frames(1)
    done, _ = await asyncio.wait({writer}, timeout=wait_timeout())
    assert done == {writer}
    assert (peer._writer, peer._backlog) == (None, None)
    await peer.aclose()


async def test_a_closed_peer_keeps_no_writer_task() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = await started(websocket)
    peer.send("stuck at the gate")  # a writer now waits on the full buffer
    websocket.client_leaves()
    async with asyncio.timeout(wait_timeout()):
        async for _ in peer.incoming():
            pass
    writer = peer._writer
    assert writer is not None
    done, _ = await asyncio.wait({writer}, timeout=wait_timeout())
    assert done == {writer}


# Peers.open and the registry a Peer is given


async def test_a_peer_built_outside_an_app_needs_no_app_state() -> None:
    websocket = FakeWebSocket()  # no scope, no app: nothing to look a registry up in
    peer = await started(websocket)
    assert peer.send("hi")
    assert await websocket.wait_frames(1) == ["hi"]
    await peer.aclose()


async def test_a_peer_ignores_the_registry_of_the_app_serving_it() -> None:
    app_peers = Peers()
    websocket = FakeWebSocket()
    websocket.scope = {"app": SimpleNamespace(state=SimpleNamespace(peers=app_peers))}  # type: ignore[attr-defined]
    peer = await started(websocket)
    assert len(app_peers) == 0
    await peer.aclose()


async def test_a_peer_is_listed_in_its_registry_until_it_closes() -> None:
    peers = Peers()
    websocket = FakeWebSocket()
    peer = peers.open(websocket)  # type: ignore[arg-type]
    assert len(peers) == 1
    websocket.client_leaves()
    async for _ in peer.incoming():
        pass
    assert peer.state is PeerState.CLOSED
    assert len(peers) == 0


async def test_peers_open_gives_each_peer_the_registry_queue_size() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = Peers(queue_size=2).open(websocket)  # type: ignore[arg-type]
    peer.send("taken by the writer")
    async with asyncio.timeout(wait_timeout()):
        await websocket.sending.wait()
    assert peer.send("queued 1") and peer.send("queued 2")
    assert not peer.send("one too many")
    assert peer.state is PeerState.CLOSING
    await peer.aclose()


async def test_peers_open_gives_each_peer_the_registry_close_timeout() -> None:
    websocket = FakeWebSocket()
    websocket.gate.clear()
    peer = Peers(queue_size=1, close_timeout=0.05).open(websocket)  # type: ignore[arg-type]
    for frame in "abc":
        peer.send(frame)
    async with asyncio.timeout(wait_timeout()):
        await peer.wait_closed()
    assert websocket.closed_with is None  # released after 0.05 s without its close frame


# Group


async def test_broadcast_reaches_every_peer_but_the_excluded_one() -> None:
    sockets = [FakeWebSocket() for _ in range(3)]
    peers = [await started(s) for s in sockets]
    group = Group()
    for peer in peers:
        group.add(peer)
    assert group.broadcast("all") == 3
    assert group.broadcast("not to 0", exclude=peers[0]) == 2
    assert [await s.wait_frames(n) for s, n in zip(sockets, (1, 2, 2), strict=True)] == [
        ["all"],
        ["all", "not to 0"],
        ["all", "not to 0"],
    ]
    for peer in peers:
        await peer.aclose()


async def test_broadcast_prunes_closed_peers() -> None:
    alive, gone = await started(FakeWebSocket()), await started(FakeWebSocket())
    group = Group()
    group.add(alive)
    group.add(gone)
    await gone.aclose()
    assert group.broadcast("hello") == 1
    assert len(group) == 1
    assert list(group) == [alive]
    await alive.aclose()


async def test_broadcast_skips_a_peer_being_cut_off_without_failing() -> None:
    slow, fine = FakeWebSocket(), FakeWebSocket()
    slow.gate.clear()
    group = Group()
    slow_peer, fine_peer = await started(slow, queue_size=1), await started(fine, queue_size=8)
    group.add(slow_peer)
    group.add(fine_peer)
    delivered = [group.broadcast(n) for n in range(4)]
    assert delivered[-1] == 1  # only the peer that keeps up still takes messages
    assert slow_peer.state is not PeerState.OPEN
    assert await fine.wait_frames(4) == ["0", "1", "2", "3"]
    for peer in (slow_peer, fine_peer):
        await peer.aclose()
