"""Lesson 04's chat (``WS /chat/{room}/{username}``, ``GET /rooms/{room}/users``), live.

Real ``websockets`` clients against uvicorn, as a learner would see it. The room's logic alone,
without sockets, is tested in ``test_chat_room.py``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from course_server import RunningServer, Settings, start
from course_server.lessons.chat import ChatRoom, ChatRooms
from course_server.realtime.messages import MAX_CONTENT_CHARS

pytestmark = pytest.mark.anyio

Frame = dict[str, Any]
_names = itertools.count()


def summary(frames: list[Frame]) -> list[tuple[Any, ...]]:
    return [(f["type"], f.get("id"), f.get("username"), f.get("content")) for f in frames]


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
    async with member(server, "general", "ana") as ana:
        assert [(f["type"], f["id"]) for f in ana.history] == [("join", 1)]


async def test_join_reaches_everyone_and_newcomer_gets_history_first(
    server: RunningServer,
) -> None:
    async with member(server, "general", "ana") as ana:
        await ana.say("hello")
        await ana.recv()
        async with member(server, "general", "ben") as ben:
            assert summary(ben.history) == [
                ("join", 1, "ana", "ana joined the room"),
                ("message", 2, "ana", "hello"),
                ("join", 3, "ben", "ben joined the room"),
            ]
            assert summary([await ana.recv()]) == [("join", 3, "ben", "ben joined the room")]


async def test_message_reaches_every_member_with_a_utc_timestamp(server: RunningServer) -> None:
    async with member(server, "general", "ana") as ana, member(server, "general", "ben") as ben:
        await ana.recv()  # ben's join
        await ben.say("hi all")
        for frame in [await ana.recv(), await ben.recv()]:
            assert summary([frame]) == [("message", 3, "ben", "hi all")]
            assert datetime.fromisoformat(frame["timestamp"]).utcoffset().total_seconds() == 0
            assert "client_msg_id" not in frame


async def test_ids_increase_per_room_independently(server: RunningServer) -> None:
    async with member(server, "red", "ana") as red, member(server, "blue", "ana") as blue:
        for client in [red, blue, red]:
            await client.say("x")
        assert [f["id"] for f in await red.recv_n(2)] == [2, 3]
        assert [f["id"] for f in await blue.recv_n(1)] == [2]


async def test_history_is_bounded(serve: Callable[..., RunningServer]) -> None:
    server = serve(history_size=5)
    async with member(server, "general", "ana") as ana:
        for n in range(8):
            await ana.say(f"m{n}")
        await ana.recv_n(8)
        async with member(server, "general", "ben") as ben:
            assert [f["id"] for f in ben.history] == [5, 6, 7, 8, 9, 10]  # 5 held, then ben's join


async def test_resume_gets_exactly_what_was_missed(server: RunningServer) -> None:
    async with member(server, "general", "ana") as ana:
        async with member(server, "general", "ben") as ben:
            await ana.recv()
            seen = [f["id"] for f in ben.history]
        assert (await ana.recv())["type"] == "leave"
        for word in ["while", "you", "were", "away"]:
            await ana.say(word)
        await ana.recv_n(4)
        async with member(server, "general", "ben", last_id=seen[-1]) as ben:
            resume, *missed, join = ben.history
    assert resume == {"type": "resume", "complete": True, "after": 2, "oldest_id": 1}
    assert [f["content"] for f in missed] == ["ben left the room", "while", "you", "were", "away"]
    ids = seen + [f["id"] for f in missed] + [join["id"]]
    assert ids == list(range(1, len(ids) + 1))  # nothing lost, nothing twice


async def test_resume_after_too_long_away_is_incomplete(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve(history_size=3)
    async with member(server, "general", "ana") as ana:
        for n in range(6):
            await ana.say(f"m{n}")
        await ana.recv_n(6)
        async with member(server, "general", "ben", last_id=1) as ben:
            resume, *held, _join = ben.history
    assert resume == {"type": "resume", "complete": False, "after": 1, "oldest_id": 5}
    assert [f["id"] for f in held] == [5, 6, 7]


async def test_resent_client_msg_id_after_reconnect_is_not_broadcast_again(
    server: RunningServer,
) -> None:
    async with member(server, "general", "ben") as ben:
        async with member(server, "general", "ana") as ana:
            await ana.say("only once", client_msg_id="m-1")
            sent, ack = await ana.recv_n(2)
            assert sent["client_msg_id"] == "m-1"
            assert ack == {"type": "ack", "client_msg_id": "m-1", "id": sent["id"]}
        async with member(server, "general", "ana", last_id=ack["id"]) as ana:
            await ana.say("only once", client_msg_id="m-1")
            assert await ana.recv() == ack
            await ana.say("next")
            assert (await ana.recv())["content"] == "next"
        contents = [f["content"] for f in await ben.recv_n(6)]
    assert contents.count("only once") == 1
    assert contents[-2:] == ["next", "ana left the room"]


async def test_username_taken_closes_4000_and_the_first_connection_stays(
    server: RunningServer,
) -> None:
    async with member(server, "general", "ana") as ana:
        async with connect(server.ws("/chat/general/ana")) as second:
            assert await Client(second, "ana").closed() == (4000, "Username taken")
        await ana.say("still here")
        assert (await ana.recv())["content"] == "still here"
        assert registry(server).users("general") == ["ana"]


async def test_same_username_in_another_room_is_fine(server: RunningServer) -> None:
    async with member(server, "red", "ana"), member(server, "blue", "ana") as blue:
        assert blue.history[-1]["type"] == "join"


async def test_leave_reaches_the_others(server: RunningServer) -> None:
    async with member(server, "general", "ana") as ana:
        async with member(server, "general", "ben"):
            await ana.recv()
        assert summary([await ana.recv()]) == [("leave", 3, "ben", "ben left the room")]


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
    async with member(server, "general", "ben") as ben, member(server, "general", "ana") as ana:
        await ben.recv()  # ana's join (id 2)
        await ana.websocket.send(frame)
        error = await ana.recv()
        assert (error["type"], error["code"]) == ("error", code)
        await ana.say("still talking")
        # Ben's next frame is the good message, with the next id: nothing else happened.
        assert summary([await ben.recv()]) == [("message", 3, "ana", "still talking")]
        assert (await ana.recv())["id"] == 3


async def test_a_frame_over_the_size_limit_closes_1009(
    serve: Callable[..., RunningServer],
) -> None:
    server = serve(max_message_bytes=1024)
    async with member(server, "general", "ben") as ben:
        async with member(server, "general", "ana") as ana:
            await ben.recv()
            await ana.say("x" * 1024)
            assert (await ana.closed())[0] == 1009
        assert (await ben.recv())["type"] == "leave"


async def test_flooding_gets_rate_limited_then_closed_1008(
    serve: Callable[..., RunningServer],
) -> None:
    # 0.5 per second: a burst of 1 and 3 strikes; a token comes back only after 2 s.
    server = serve(rate_limit=0.5)
    async with member(server, "general", "ana") as ana:
        for n in range(4):  # allowed, dropped, dropped, and the third strike closes
            await ana.say(f"spam {n}")
        frames = await ana.recv_n(3)
        assert [f.get("code", f["type"]) for f in frames] == [
            "message",
            "rate_limited",
            "rate_limited",
        ]
        assert await ana.closed() == (1008, "Rate limit exceeded")


async def test_users_endpoint_lists_members_in_join_order(server: RunningServer) -> None:
    async with (
        httpx.AsyncClient(base_url=server.http_url, timeout=wait_timeout()) as http,
        member(server, "general", "carol"),
        member(server, "general", "ana"),
    ):
        response = await http.get("/rooms/general/users")
        assert response.status_code == 200
        assert response.json() == {"users": ["carol", "ana"]}
        assert (await http.get("/rooms/nowhere/users")).json() == {"users": []}


async def test_rooms_are_freed_when_they_empty(server: RunningServer) -> None:
    rooms = registry(server)

    async def current(name: str) -> weakref.ref[ChatRoom]:
        chat = rooms.get(name)
        assert chat is not None
        return weakref.ref(chat)

    refs = []
    for n in range(20):
        async with member(server, f"room-{n}", "ana"):
            refs.append(server.call(current(f"room-{n}")))
    server.call(asyncio.wait_for(rooms.wait_until(lambda r: len(r) == 0), wait_timeout()))
    gc.collect()
    assert [ref for ref in refs if ref() is not None] == []


async def test_a_negative_last_id_is_refused(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with asyncio.timeout(wait_timeout()), connect(server.ws("/chat/g/a?last_id=-1")):
            pass
    assert info.value.response.status_code == 403
