"""Lesson 07: a shared room's commands, as Lua script calls going out and results coming back.

``to_call`` turns a queued command (join, post, leave, or rejoin after Redis lost this process's
presence) into a call of a script in ``redis_scripts``; ``finish`` hands its result to the member
it concerns: history and join, an ack, an error, a close. No I/O here: ``RedisRooms`` sends the
calls, a batch per script call (``Scripts.batch``), and collects the results.

An event travels as JSON without its id; the script that gives it an id writes ``{"id":N,`` in
front, so the event Redis keeps and publishes is the one every process delivers.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from course_server.lessons.chat import utc_now
from course_server.realtime.closecodes import CloseCode
from course_server.realtime.messages import (
    AckFrame,
    ErrorCode,
    JoinEvent,
    LeaveEvent,
    MessageEvent,
    ResumeFrame,
    RoomEvent,
    SendMessage,
    error,
)
from course_server.scaling.link import Call
from course_server.scaling.scripts import RoomKeys, room_keys
from course_server.scaling.shared_room import (
    TRY_AGAIN_LATER,
    Member,
    MemberState,
    SharedRoom,
    parse_event,
)

IDLE_SECONDS = 3600
"""How long an emptied room's id counter is kept, so its ids do not start again at 1.

An emptied room's history goes at once; only this counter stays, for the clients that come back
with ``?last_id=N`` (a client that saw ids restart at 1 would drop them as already seen). They
come back within seconds (``reconnecting`` backs off 5 s at most); an hour also covers a
laptop's nap. Every room name anyone tried holds one key this long, so it is kept short: a day
made it 24 times as many keys for a flood of made-up names.
"""

Kind = Literal["join", "rejoin", "post", "leave"]


class Command:
    """Something a local member did that Redis has to record, in the order it happened."""

    __slots__ = ("kind", "member", "message", "room")

    def __init__(
        self, kind: Kind, room: SharedRoom, member: Member, message: SendMessage | None = None
    ) -> None:
        self.kind, self.room, self.member, self.message = kind, room, member, message


class Followup(enum.Enum):
    """What ``finish`` leaves to the caller."""

    NONE = "none"
    RETRY = "retry"  # a leave Redis did not take: send it again later
    RESYNC = "resync"  # Redis does not know a member we have: register our members again


def body(kind: type[RoomEvent], username: str, content: str, **extra: Any) -> str:
    """An event as JSON, without its id (the script puts the id in)."""
    event = kind(username=username, content=content, timestamp=utc_now(), id=0, **extra)
    return event.model_dump_json(exclude={"id"})


def leave_body(username: str) -> str:
    return body(LeaveEvent, username, f"{username} left the room")


def to_call(command: Command, process: str, history: int, sent_limit: int) -> Call | None:
    """The script call for ``command``, or None when there is nothing to send."""
    room, member, name = command.room, command.member, command.member.username
    keys = RoomKeys.of(room.name)
    # ``floor``: the highest id this process has seen here. Ids go on from there even if Redis
    # restarted empty meanwhile, so they keep increasing for every client.
    where = [history, keys.channel, room.last_seen or 0]
    if command.kind in {"join", "rejoin"}:
        mode = "rejoin" if command.kind == "rejoin" else ""
        if command.kind == "join" and member.last_id is not None:
            mode = str(member.last_id)
        joined = body(JoinEvent, name, f"{name} joined the room")
        args = [room.name, name, process, joined, leave_body(name), *where, IDLE_SECONDS, mode]
        return "JOIN", room_keys(keys, process), args
    if command.kind == "leave":
        if member.state not in {MemberState.PENDING, MemberState.JOINED}:
            return None  # its join never happened
        joined_id = member.joined_id or ""  # "" = whichever: its join is in this very batch
        args = [room.name, name, process, leave_body(name), *where, IDLE_SECONDS, joined_id]
        return "LEAVE", room_keys(keys, process), args
    message = command.message
    assert message is not None
    key = message.client_msg_id
    sent_key = "" if key is None else f"{len(name)}:{name}{key}"  # (name, key), unambiguously
    post = body(MessageEvent, name, message.content, client_msg_id=key)
    args = [post, *where, sent_key, sent_limit, name, process]
    return "POST", room_keys(keys, process), args


def finish(command: Command, result: Any) -> Followup:
    """Hand the result of ``command``'s script (or the exception instead) to its member."""
    if command.kind == "join":
        _joined(command, result)
        return Followup.NONE
    member, peer = command.member, command.member.peer
    failed = isinstance(result, Exception) or result is None
    if command.kind == "leave":
        return Followup.RETRY if failed else Followup.NONE
    if command.kind == "rejoin":
        if failed:
            return Followup.RESYNC
        if result[0] == 0:  # while we were away, a newcomer elsewhere took the name
            member.state = MemberState.REFUSED
            peer.close(CloseCode.USERNAME_TAKEN, "Username taken")
        elif result[0] == 1:
            member.joined_id = result[1]
        return Followup.NONE
    if failed or result[0] == -1:
        text = "Redis did not take this message: send it again (same client_msg_id)"
        member.settle(error(ErrorCode.UNAVAILABLE, text))
        # -1: Redis does not know this member (it restarted empty, or had us reaped).
        return Followup.NONE if failed else Followup.RESYNC
    if result[0] == 0:  # a resend: acked again with the id it got the first time
        assert command.message is not None and command.message.client_msg_id is not None
        member.settle(AckFrame(client_msg_id=command.message.client_msg_id, id=result[1]))
    return Followup.NONE  # recorded: it settles when it comes back (SharedRoom.deliver)


def _joined(command: Command, result: Any) -> None:
    member, peer = command.member, command.member.peer
    if isinstance(result, Exception) or result is None:
        member.state = MemberState.FAILED
        peer.send(error(ErrorCode.UNAVAILABLE, "the chat cannot reach Redis: try again"))
        peer.close(TRY_AGAIN_LATER, "Try again later")
    elif result[0] == 0:
        member.state = MemberState.REFUSED
        peer.close(CloseCode.USERNAME_TAKEN, "Username taken")
    else:
        _, join_id, complete, oldest, *events = result
        frames: list[object] = []
        if member.last_id is not None:
            oldest_id = None if oldest < 0 else oldest
            after = member.last_id
            frames.append(ResumeFrame(complete=complete, after=after, oldest_id=oldest_id))
        frames += [parse_event(event) for event in events]
        command.room.admit(member, join_id, frames)
