"""Lesson 07's ``SharedRoom`` without Redis or sockets: who gets which event, in what order.

Redis decides the ids; the room only delivers. So these tests play Redis' part by hand: they
admit members with the id of their join and deliver events, in whatever order pub/sub and a
join's reply happen to arrive, and check what each fake peer was sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fake_peers import fake

from course_server.realtime.fanout import Peer
from course_server.realtime.messages import JoinEvent, MessageEvent, RoomEvent, SendMessage
from course_server.scaling.shared_room import (
    TRY_AGAIN_LATER,
    InOrder,
    MemberState,
    SharedRoom,
    parse_event,
)

NOON = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def ids(peer: Peer) -> list[tuple[str, int | None]]:
    return [(f["type"], f.get("id")) for f in peer.frames]  # type: ignore[attr-defined]


def message(n: int, username: str = "ben", client_msg_id: str | None = None) -> RoomEvent:
    return MessageEvent(
        username=username, content=f"m{n}", timestamp=NOON, id=n, client_msg_id=client_msg_id
    )


def join(n: int, username: str) -> RoomEvent:
    return JoinEvent(username=username, content=f"{username} joined the room", timestamp=NOON, id=n)


def room() -> tuple[SharedRoom, list[tuple[str, SendMessage]]]:
    posted: list[tuple[str, SendMessage]] = []
    shared = SharedRoom("general", lambda _room, member, msg: posted.append((member.username, msg)))
    return shared, posted


def test_admitted_member_gets_its_history_then_events_after_its_join() -> None:
    shared, _ = room()
    ana = fake()
    member = shared.add("ana", ana, None)
    shared.admit(member, 5, [message(4), join(5, "ana")])
    shared.deliver(message(6))
    assert ids(ana) == [("message", 4), ("join", 5), ("message", 6)]
    assert member.state is MemberState.JOINED


def test_events_that_overtook_the_join_reply_are_replayed_once() -> None:
    shared, _ = room()
    ben, ana = fake(), fake()
    shared.admit(shared.add("ben", ben, None), 3, [join(3, "ben")])
    pending = shared.add("ana", ana, None)
    for event in [join(4, "ana"), message(5), message(6)]:  # pub/sub came first
        shared.deliver(event)
    shared.admit(pending, 4, [join(4, "ana")])
    shared.deliver(message(6))  # a duplicate: already delivered
    shared.deliver(message(7))
    assert ids(ana) == [("join", 4), ("message", 5), ("message", 6), ("message", 7)]
    assert ids(ben) == [("join", 3), ("join", 4), ("message", 5), ("message", 6), ("message", 7)]


def test_reply_ahead_of_pubsub_holds_the_member_until_its_join_passes() -> None:
    shared, _ = room()
    ben, ana = fake(), fake()
    shared.admit(shared.add("ben", ben, None), 3, [join(3, "ben")])
    shared.admit(shared.add("ana", ana, None), 5, [message(4), join(5, "ana")])
    for event in [message(4), join(5, "ana"), message(6)]:  # pub/sub catches up
        shared.deliver(event)
    assert ids(ana) == [("message", 4), ("join", 5), ("message", 6)]
    assert ids(ben)[-3:] == [("message", 4), ("join", 5), ("message", 6)]


def test_sender_gets_its_ack_right_after_its_own_message() -> None:
    shared, _ = room()
    ana = fake()
    shared.admit(shared.add("ana", ana, None), 1, [])
    shared.deliver(message(2, "ana", client_msg_id="k1"))
    assert ana.frames[-1] == {"type": "ack", "client_msg_id": "k1", "id": 2}  # type: ignore[attr-defined]


def test_no_ack_for_a_message_from_someone_on_another_process() -> None:
    shared, _ = room()
    ana = fake()
    shared.admit(shared.add("ana", ana, None), 1, [])
    shared.deliver(message(2, "ben", client_msg_id="k1"))
    assert ids(ana) == [("message", 2)]


def test_post_is_handed_on_with_the_member() -> None:
    shared, posted = room()
    shared.add("ana", fake(), None)
    shared.post("ana", SendMessage(type="message", content="hi"))
    assert [(name, msg.content) for name, msg in posted] == [("ana", "hi")]


def test_removed_member_gets_nothing_more_and_is_no_longer_listed() -> None:
    shared, _ = room()
    ana = fake()
    member = shared.add("ana", ana, None)
    shared.admit(member, 1, [])
    assert shared.remove("ana", ana) is member
    shared.deliver(message(2))
    assert ids(ana) == [] and shared.users == [] and not shared


def test_remove_ignores_a_stale_connection_of_the_same_name() -> None:
    shared, _ = room()
    old, new = fake(), fake()
    shared.add("ana", new, None)
    assert shared.remove("ana", old) is None
    assert shared.users == ["ana"]


def test_join_reply_for_a_member_that_already_left_sends_nothing() -> None:
    shared, _ = room()
    ana = fake()
    member = shared.add("ana", ana, None)
    shared.remove("ana", ana)
    shared.admit(member, 1, [join(1, "ana")])
    assert ids(ana) == [] and member.joined_id == 1


def test_missed_events_close_every_member_so_they_resume() -> None:
    shared, _ = room()
    ana, ben = fake(), fake()
    shared.admit(shared.add("ana", ana, None), 1, [])
    shared.add("ben", ben, None)
    shared.missed()
    assert ana.closed == ben.closed == (TRY_AGAIN_LATER, "Missed events: reconnect with last_id")  # type: ignore[attr-defined]


def test_events_parse_from_the_json_redis_keeps_id_first() -> None:
    text = (
        '{"id":7,"type":"message","username":"a","content":"x","timestamp":"2025-01-01T12:00:00Z"}'
    )
    event = parse_event(text)
    assert isinstance(event, MessageEvent) and event.id == 7
    assert "client_msg_id" not in event.model_dump_json()


def test_a_reply_waits_for_exactly_the_posts_sent_before_it() -> None:
    peer = fake()
    member = InOrder(peer)
    member.posted += 1  # post 1 on its way
    member.reply({"r": 1})
    member.posted += 1  # post 2 on its way
    member.reply({"r": 2})
    assert peer.frames == []  # type: ignore[attr-defined]
    member.settle()  # post 1 back: reply 1 may go, reply 2 still waits for post 2
    assert peer.frames == [{"r": 1}]  # type: ignore[attr-defined]
    member.settle({"error": "post 2 failed"})
    assert peer.frames == [{"r": 1}, {"error": "post 2 failed"}, {"r": 2}]  # type: ignore[attr-defined]


def test_a_reply_with_nothing_on_its_way_goes_at_once() -> None:
    peer = fake()
    InOrder(peer).reply({"r": 1})
    assert peer.frames == [{"r": 1}]  # type: ignore[attr-defined]


def test_settle_all_releases_replies_whose_posts_will_never_come_back() -> None:
    peer = fake()
    member = InOrder(peer)
    member.posted += 2
    member.reply({"r": 1})
    member.settle_all()
    assert peer.frames == [{"r": 1}]  # type: ignore[attr-defined]
    member.reply({"r": 2})
    assert peer.frames == [{"r": 1}, {"r": 2}]  # type: ignore[attr-defined]
