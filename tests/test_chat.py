"""Lesson 04's chat (``course_server.chat`` and ``roomlog``): the room without sockets, then live.

The room does no I/O, so the first half drives it with fake peers that record what they were
sent. The second half runs real ``websockets`` clients against uvicorn, as a learner would.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from course_server import RunningServer, Settings, start
from course_server.chat import ChatRoom, ChatRooms, receive
from course_server.fanout import Peer, PeerState, encode
from course_server.messages import MAX_CONTENT_CHARS, MessageEvent, SendMessage
from course_server.ratelimit import FloodGuard
from course_server.roomlog import MemoryLog

pytestmark = pytest.mark.anyio

Frame = dict[str, Any]
_names = itertools.count()
NOON = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


# --- the room, without sockets ---------------------------------------------------------------


class FakePeer:
    """Stands in for a ``Peer``: records every frame it is sent, and a close."""

    def __init__(self) -> None:
        self.state = PeerState.OPEN
        self.frames: list[Frame] = []
        self.closed: tuple[int, str] | None = None

    def send(self, message: Any) -> bool:
        self.frames.append(json.loads(encode(message)))
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.state = PeerState.CLOSING
        self.closed = (code, reason)

    def take(self) -> list[Frame]:
        frames, self.frames = self.frames, []
        return frames


def fake() -> Peer:
    return FakePeer()  # type: ignore[return-value]


def frames_of(peer: Peer) -> list[Frame]:
    return peer.take()  # type: ignore[attr-defined]


def summary(frames: list[Frame]) -> list[tuple[Any, ...]]:
    return [(f["type"], f.get("id"), f.get("username"), f.get("content")) for f in frames]


def say(content: str, client_msg_id: str | None = None) -> SendMessage:
    return SendMessage(type="message", content=content, client_msg_id=client_msg_id)


def room(history_size: int = 50) -> ChatRoom:
    return ChatRoom("general", history_size=history_size, now=lambda: NOON)


def test_log_since_is_complete_when_nothing_was_evicted() -> None:
    log = MemoryLog(history_size=5)
    for _ in range(4):
        log.append(lambda i: _event(i))
    complete, oldest_id, events = log.since(1)
    assert (complete, oldest_id, [e.id for e in events]) == (True, 1, [2, 3, 4])


def test_log_since_is_incomplete_when_events_were_evicted() -> None:
    log = MemoryLog(history_size=3)
    for _ in range(7):
        log.append(lambda i: _event(i))
    complete, oldest_id, events = log.since(2)
    assert (complete, oldest_id, [e.id for e in events]) == (False, 5, [5, 6, 7])


def test_log_since_the_newest_id_is_complete_and_empty() -> None:
    log = MemoryLog(history_size=3)
    for _ in range(7):
        log.append(lambda i: _event(i))
    assert log.since(7) == (True, 5, [])
    assert log.since(4).complete  # 5, 6, 7 are all still held


def test_log_since_an_unknown_id_is_incomplete_and_gives_everything_held() -> None:
    log = MemoryLog(history_size=3, first_id=10)
    for _ in range(2):
        log.append(lambda i: _event(i))
    assert log.since(99) == (False, 10, log.recent())  # beyond the newest: a server restart?
    assert log.since(3) == (False, 10, log.recent())  # before this room existed
    assert log.since(9).complete  # "I saw everything before this room": nothing missed


def test_log_with_no_history_is_complete_only_when_up_to_date() -> None:
    log = MemoryLog(history_size=0)
    log.append(lambda i: _event(i))
    assert log.since(1) == (True, None, [])
    assert log.since(0) == (False, None, [])


def test_join_sends_history_then_announces_to_everyone() -> None:
    chat, alice, bob = room(), fake(), fake()
    chat.join("alice", alice)
    chat.post("alice", say("hi"))
    chat.join("bob", bob)
    assert summary(frames_of(bob)) == [
        ("join", 1, "alice", "alice joined the room"),
        ("message", 2, "alice", "hi"),
        ("join", 3, "bob", "bob joined the room"),
    ]
    assert summary(frames_of(alice))[-1] == ("join", 3, "bob", "bob joined the room")


def test_events_carry_the_room_clock_in_utc() -> None:
    chat, alice = room(), fake()
    chat.join("alice", alice)
    assert frames_of(alice)[0]["timestamp"] == "2025-01-01T12:00:00Z"


def test_users_are_listed_in_join_order() -> None:
    chat = room()
    for name in ["carol", "alice", "bob"]:
        chat.join(name, fake())
    assert chat.users == ["carol", "alice", "bob"]


def test_joining_twice_with_one_name_is_refused() -> None:
    chat = room()
    chat.join("alice", fake())
    with pytest.raises(ValueError, match="already"):
        chat.join("alice", fake())


def test_leave_is_announced_to_the_others_only() -> None:
    chat, alice, bob = room(), fake(), fake()
    chat.join("alice", alice)
    chat.join("bob", bob)
    frames_of(alice)
    frames_of(bob)
    assert chat.leave("bob", bob)
    assert summary(frames_of(alice)) == [("leave", 3, "bob", "bob left the room")]
    assert frames_of(bob) == []


def test_a_stale_connection_cannot_remove_the_current_one() -> None:
    chat, first, second = room(), fake(), fake()
    chat.join("alice", first)
    chat.leave("alice", first)
    chat.join("alice", second)
    assert not chat.leave("alice", first)
    assert chat.users == ["alice"]


def test_resume_sends_the_resume_frame_and_the_gap() -> None:
    chat, alice, bob = room(), fake(), fake()
    chat.join("alice", alice)
    for word in ["a", "b", "c"]:
        chat.post("alice", say(word))
    chat.join("bob", bob, last_id=2)
    frames = frames_of(bob)
    assert frames[0] == {"type": "resume", "complete": True, "after": 2, "oldest_id": 1}
    assert [f["id"] for f in frames[1:]] == [3, 4, 5]


def test_client_msg_id_is_acked_to_the_sender_only() -> None:
    chat, alice, bob = room(), fake(), fake()
    chat.join("alice", alice)
    chat.join("bob", bob)
    frames_of(alice)
    frames_of(bob)
    chat.post("alice", say("hi", "k1"))
    assert frames_of(alice)[-1] == {"type": "ack", "client_msg_id": "k1", "id": 3}
    assert [f["type"] for f in frames_of(bob)] == ["message"]


def test_a_resent_client_msg_id_is_acked_with_the_first_id_and_not_repeated() -> None:
    chat, alice, bob = room(), fake(), fake()
    chat.join("alice", alice)
    chat.join("bob", bob)
    chat.post("alice", say("hi", "k1"))
    frames_of(alice)
    frames_of(bob)
    assert chat.post("alice", say("hi", "k1")) is None
    assert frames_of(alice) == [{"type": "ack", "client_msg_id": "k1", "id": 3}]
    assert frames_of(bob) == []


def test_the_same_client_msg_id_from_another_user_is_a_new_message() -> None:
    chat = room()
    chat.join("alice", fake())
    chat.join("bob", fake())
    first = chat.post("alice", say("hi", "k1"))
    second = chat.post("bob", say("hi", "k1"))
    assert first is not None and second is not None and second.id == first.id + 1


def test_remembered_client_msg_ids_are_bounded() -> None:
    chat = room(history_size=1)  # remembers max(1 * 4, 256) = 256 ids
    chat.join("alice", fake())
    for n in range(300):
        chat.post("alice", say("x", f"k{n}"))
    assert chat.post("alice", say("x", "k299")) is None  # recent: still recognised
    assert chat.post("alice", say("x", "k0")) is not None  # long forgotten: sent again


def test_registry_creates_on_first_join_and_frees_when_empty() -> None:
    rooms, alice = ChatRooms(), fake()
    chat = rooms.join("general", "alice", alice)
    assert "general" in rooms and rooms.users("general") == ["alice"]
    rooms.leave(chat, "alice", alice)
    assert "general" not in rooms and len(rooms) == 0 and rooms.users("general") == []


def test_a_room_made_again_continues_the_ids_instead_of_repeating_them() -> None:
    rooms, alice = ChatRooms(), fake()
    chat = rooms.join("general", "alice", alice)
    chat.post("alice", say("hi"))  # ids 1, 2; alice's leave is 3
    rooms.leave(chat, "alice", alice)
    bob = fake()
    rooms.join("general", "bob", bob, last_id=2)
    frames = frames_of(bob)
    assert frames[0]["complete"] is False  # the old room's leave (3) is gone with it
    assert frames[1]["id"] == 4


async def test_wait_until_wakes_on_changes() -> None:
    rooms, alice = ChatRooms(), fake()
    chat = rooms.join("general", "alice", alice)
    waiter = asyncio.ensure_future(rooms.wait_until(lambda r: len(r) == 0))
    await asyncio.sleep(0)  # let the waiter start waiting: this orders, it does not time
    assert not waiter.done()
    rooms.leave(chat, "alice", alice)
    async with asyncio.timeout(wait_timeout()):
        await waiter


def test_bad_input_gets_an_error_and_uses_no_id() -> None:
    chat, alice = room(), fake()
    chat.join("alice", alice)
    frames_of(alice)
    guard = FloodGuard(rate=0)
    receive(chat, "alice", alice, guard, "not json")
    receive(chat, "alice", alice, guard, '{"type": "message", "content": "ok"}')
    frames = frames_of(alice)
    assert frames[0]["code"] == "invalid_json"
    assert (frames[1]["type"], frames[1]["id"]) == ("message", 2)


def test_frames_from_a_connection_no_longer_in_the_room_are_ignored() -> None:
    chat, old, current = room(), fake(), fake()
    chat.join("alice", old)
    chat.leave("alice", old)
    chat.join("alice", current)
    frames_of(current)
    receive(chat, "alice", old, FloodGuard(rate=0), '{"type": "message", "content": "late"}')
    assert frames_of(current) == []


def test_room_drops_a_flood_then_closes_1008() -> None:
    chat, alice = room(), fake()
    chat.join("alice", alice)
    frames_of(alice)
    guard = FloodGuard(rate=1, burst=1, strikes=2, clock=lambda: 0.0)
    for _ in range(4):
        receive(chat, "alice", alice, guard, '{"type": "message", "content": "spam"}')
    assert [f.get("code", f["type"]) for f in frames_of(alice)] == ["message", "rate_limited"]
    assert alice.closed == (1008, "Rate limit exceeded")  # type: ignore[attr-defined]


def _event(event_id: int) -> MessageEvent:
    return MessageEvent(username="a", content=str(event_id), timestamp=NOON, id=event_id)


# --- live: real clients against uvicorn --------------------------------------------------------


class Client:
    """A chat client: sends frames as JSON, reads them back parsed, every read bounded."""

    def __init__(self, websocket: ClientConnection, name: str) -> None:
        self.websocket = websocket
        self.name = name
        self.history: list[Frame] = []  # what came before this client's own join

    async def say(self, content: str, **extra: Any) -> None:
        await self.websocket.send(json.dumps({"type": "message", "content": content, **extra}))

    async def recv(self) -> Frame:
        async with asyncio.timeout(wait_timeout()):
            return json.loads(await self.websocket.recv())

    async def recv_n(self, count: int) -> list[Frame]:
        return [await self.recv() for _ in range(count)]

    async def closed(self) -> tuple[int | None, str | None]:
        """Read until the server closes; return its close code and reason."""
        with pytest.raises(ConnectionClosed) as info:
            async with asyncio.timeout(wait_timeout()):
                while True:
                    await self.websocket.recv()
        close = info.value.rcvd
        return (close.code, close.reason) if close else (None, None)


@asynccontextmanager
async def member(
    server: RunningServer, room_name: str, name: str, last_id: int | None = None
) -> AsyncIterator[Client]:
    """A connected client that has read everything up to and including its own join.

    Its own join is the first join of ``name`` it reads: a client coming back passes a
    ``last_id`` past its earlier join (as a real client does), or the history would hold that one.
    """
    query = "" if last_id is None else f"?last_id={last_id}"
    async with connect(server.ws(f"/chat/{room_name}/{name}{query}")) as websocket:
        client = Client(websocket, name)
        while True:
            frame = await client.recv()
            client.history.append(frame)
            if frame["type"] == "join" and frame["username"] == name:
                break
        yield client


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    """Start a server with some settings changed (``serve(history_size=5)``); stopped after."""
    started: list[RunningServer] = []

    def _serve(**overrides: Any) -> RunningServer:
        settings = Settings(jwt_secret="test-secret-not-for-production", **overrides)
        started.append(start(name=f"test-chat-{next(_names)}", settings=settings))
        return started[-1]

    yield _serve
    for running in started:
        running.stop()


def registry(server: RunningServer) -> ChatRooms:
    return server.app.state.chat_rooms


async def test_first_member_sees_only_its_own_join_with_id_1(server: RunningServer) -> None:
    async with member(server, "general", "alice") as alice:
        assert [(f["type"], f["id"]) for f in alice.history] == [("join", 1)]


async def test_join_reaches_everyone_and_newcomer_gets_history_first(
    server: RunningServer,
) -> None:
    async with member(server, "general", "alice") as alice:
        await alice.say("hello")
        await alice.recv()
        async with member(server, "general", "bob") as bob:
            assert summary(bob.history) == [
                ("join", 1, "alice", "alice joined the room"),
                ("message", 2, "alice", "hello"),
                ("join", 3, "bob", "bob joined the room"),
            ]
            assert summary([await alice.recv()]) == [("join", 3, "bob", "bob joined the room")]


async def test_message_reaches_every_member_with_a_utc_timestamp(server: RunningServer) -> None:
    async with member(server, "general", "alice") as alice, member(server, "general", "bob") as bob:
        await alice.recv()  # bob's join
        await bob.say("hi all")
        for frame in [await alice.recv(), await bob.recv()]:
            assert summary([frame]) == [("message", 3, "bob", "hi all")]
            assert datetime.fromisoformat(frame["timestamp"]).utcoffset().total_seconds() == 0
            assert "client_msg_id" not in frame


async def test_ids_increase_per_room_independently(server: RunningServer) -> None:
    async with member(server, "red", "alice") as red, member(server, "blue", "alice") as blue:
        for client in [red, blue, red]:
            await client.say("x")
        assert [f["id"] for f in await red.recv_n(2)] == [2, 3]
        assert [f["id"] for f in await blue.recv_n(1)] == [2]


async def test_history_is_bounded(serve: Callable[..., RunningServer]) -> None:
    server = serve(history_size=5)
    async with member(server, "general", "alice") as alice:
        for n in range(8):
            await alice.say(f"m{n}")
        await alice.recv_n(8)
        async with member(server, "general", "bob") as bob:
            assert [f["id"] for f in bob.history] == [5, 6, 7, 8, 9, 10]  # 5 held, then bob's join


async def test_resume_gets_exactly_what_was_missed(server: RunningServer) -> None:
    async with member(server, "general", "alice") as alice:
        async with member(server, "general", "bob") as bob:
            await alice.recv()
            seen = [f["id"] for f in bob.history]
        assert (await alice.recv())["type"] == "leave"
        for word in ["while", "you", "were", "away"]:
            await alice.say(word)
        await alice.recv_n(4)
        async with member(server, "general", "bob", last_id=seen[-1]) as bob:
            resume, *missed, join = bob.history
    assert resume == {"type": "resume", "complete": True, "after": 2, "oldest_id": 1}
    assert [f["content"] for f in missed] == ["bob left the room", "while", "you", "were", "away"]
    ids = seen + [f["id"] for f in missed] + [join["id"]]
    assert ids == list(range(1, len(ids) + 1))  # nothing lost, nothing twice


async def test_resume_after_too_long_away_is_incomplete(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve(history_size=3)
    async with member(server, "general", "alice") as alice:
        for n in range(6):
            await alice.say(f"m{n}")
        await alice.recv_n(6)
        async with member(server, "general", "bob", last_id=1) as bob:
            resume, *held, _join = bob.history
    assert resume == {"type": "resume", "complete": False, "after": 1, "oldest_id": 5}
    assert [f["id"] for f in held] == [5, 6, 7]


async def test_resent_client_msg_id_after_reconnect_is_not_broadcast_again(
    server: RunningServer,
) -> None:
    async with member(server, "general", "bob") as bob:
        async with member(server, "general", "alice") as alice:
            await alice.say("only once", client_msg_id="m-1")
            sent, ack = await alice.recv_n(2)
            assert sent["client_msg_id"] == "m-1"
            assert ack == {"type": "ack", "client_msg_id": "m-1", "id": sent["id"]}
        async with member(server, "general", "alice", last_id=ack["id"]) as alice:
            await alice.say("only once", client_msg_id="m-1")
            assert await alice.recv() == ack
            await alice.say("next")
            assert (await alice.recv())["content"] == "next"
        contents = [f["content"] for f in await bob.recv_n(6)]
    assert contents.count("only once") == 1
    assert contents[-2:] == ["next", "alice left the room"]


async def test_username_taken_closes_4000_and_the_first_connection_stays(
    server: RunningServer,
) -> None:
    async with member(server, "general", "alice") as alice:
        async with connect(server.ws("/chat/general/alice")) as second:
            assert await Client(second, "alice").closed() == (4000, "Username taken")
        await alice.say("still here")
        assert (await alice.recv())["content"] == "still here"
        assert registry(server).users("general") == ["alice"]


async def test_same_username_in_another_room_is_fine(server: RunningServer) -> None:
    async with member(server, "red", "alice"), member(server, "blue", "alice") as blue:
        assert blue.history[-1]["type"] == "join"


async def test_leave_reaches_the_others(server: RunningServer) -> None:
    async with member(server, "general", "alice") as alice:
        async with member(server, "general", "bob"):
            await alice.recv()
        assert summary([await alice.recv()]) == [("leave", 3, "bob", "bob left the room")]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ('["message", "hi"]', "invalid_message"),
        ('{"type": "message"}', "invalid_message"),
        ('{"type": "message", "content": 42}', "invalid_message"),
        ('{"type": "dance"}', "unknown_type"),
        (
            json.dumps({"type": "message", "content": "x" * (MAX_CONTENT_CHARS + 1)}),
            "content_too_long",
        ),
        (b"\x00\x01", "binary_not_supported"),
    ],
)
async def test_bad_input_gets_an_error_and_the_room_goes_on(
    server: RunningServer, frame: str | bytes, code: str
) -> None:
    async with member(server, "general", "bob") as bob, member(server, "general", "alice") as alice:
        await bob.recv()  # alice's join (id 2)
        await alice.websocket.send(frame)
        error = await alice.recv()
        assert (error["type"], error["code"]) == ("error", code)
        await alice.say("still talking")
        # Bob's next frame is the good message, with the next id: nothing else happened.
        assert summary([await bob.recv()]) == [("message", 3, "alice", "still talking")]
        assert (await alice.recv())["id"] == 3


async def test_a_frame_over_the_size_limit_closes_1009(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve(max_message_bytes=1024)
    async with member(server, "general", "bob") as bob:
        async with member(server, "general", "alice") as alice:
            await bob.recv()
            await alice.say("x" * 1024)
            assert (await alice.closed())[0] == 1009
        assert (await bob.recv())["type"] == "leave"


async def test_flooding_gets_rate_limited_then_closed_1008(
    serve: Callable[..., RunningServer],
) -> None:
    # 0.5 per second: a burst of 1 and 3 strikes; a token comes back only after 2 s.
    server = serve(rate_limit=0.5)
    async with member(server, "general", "alice") as alice:
        for n in range(4):  # allowed, dropped, dropped, and the third strike closes
            await alice.say(f"spam {n}")
        frames = await alice.recv_n(3)
        assert [f.get("code", f["type"]) for f in frames] == [
            "message",
            "rate_limited",
            "rate_limited",
        ]
        assert await alice.closed() == (1008, "Rate limit exceeded")


async def test_users_endpoint_lists_members_in_join_order(server: RunningServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.http_url, timeout=wait_timeout()) as http,
        member(server, "general", "carol"),
        member(server, "general", "alice"),
    ):
        response = await http.get("/rooms/general/users")
        assert response.status_code == 200
        assert response.json() == {"users": ["carol", "alice"]}
        assert (await http.get("/rooms/nowhere/users")).json() == {"users": []}


async def test_rooms_are_freed_when_they_empty(server: RunningServer) -> None:
    rooms = registry(server)

    async def current(name: str) -> weakref.ref[ChatRoom]:
        chat = rooms.get(name)
        assert chat is not None
        return weakref.ref(chat)

    refs = []
    for n in range(20):
        async with member(server, f"room-{n}", "alice"):
            refs.append(server.call(current(f"room-{n}")))
    server.call(asyncio.wait_for(rooms.wait_until(lambda r: len(r) == 0), wait_timeout()))
    gc.collect()
    assert [ref for ref in refs if ref() is not None] == []


async def test_a_negative_last_id_is_refused(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with asyncio.timeout(wait_timeout()), connect(server.ws("/chat/g/a?last_id=-1")):
            pass
    assert info.value.response.status_code == 403
