"""Lesson 04's chat room without sockets (``course_server.lessons.chat`` and ``roomlog``).

The room does no I/O: it hands frames to each member's ``Peer``, whose ``send()`` only queues.
So these tests drive it with fake peers that record what they were sent; no server, no clock.
``test_chat.py`` runs the same behaviours live, with real clients against uvicorn.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import wait_timeout
from fake_peers import Frame, fake

from course_server.lessons.chat import ChatRoom, ChatRooms, receive
from course_server.realtime.fanout import Peer
from course_server.realtime.messages import MessageEvent, SendMessage
from course_server.realtime.ratelimit import FloodGuard
from course_server.realtime.roomlog import MemoryLog

pytestmark = pytest.mark.anyio

NOON = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


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
