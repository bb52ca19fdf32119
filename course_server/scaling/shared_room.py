"""Lesson 07: this process's side of a room that lives in Redis: its members, and what they get.

Like lesson 04's ``ChatRoom``, it does no I/O and never awaits. Redis decides each event's id,
and pub/sub brings the events here in that order; ``deliver`` hands each to the local members
(through their ``Peer``, whose ``send()`` only queues). A newcomer's join script returns its
history and the id ``J`` of its own join; ``admit`` sends those, and from then on the member gets
exactly the events after ``J``: some may already have come through here (pub/sub and the script's
reply race on two connections), so the room keeps the last few to catch it up.

Ids are consecutive per room, so a jump (event 12 after event 9) means events were missed, e.g.
while the pub/sub connection was down: the caller fills the gap from the room's stream first.

A member's own message comes back to it after a round trip through Redis, while an error about
its *next* frame is known at once. ``reply`` holds such a frame until the member's earlier posts
have come back (or failed), so a client sees answers in the order it sent its frames, as it
does with lesson 04's single process.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Annotated

from pydantic import Field, TypeAdapter

from course_server.realtime.fanout import Group, Peer
from course_server.realtime.messages import (
    AckFrame,
    JoinEvent,
    LeaveEvent,
    MessageEvent,
    RoomEvent,
    SendMessage,
)

RECENT_EVENTS = 256
"""Events each room keeps to catch up a newcomer whose join reply came after later events."""

TRY_AGAIN_LATER = 1013  # RFC 6455 §7.4.1: the client should reconnect (and resume) later

_events: TypeAdapter[MessageEvent | JoinEvent | LeaveEvent] = TypeAdapter(
    Annotated[MessageEvent | JoinEvent | LeaveEvent, Field(discriminator="type")]
)


def parse_event(text: str) -> RoomEvent:
    """An event as Redis holds it (JSON, ``id`` first) → the model lesson 04 sends."""
    return _events.validate_json(text)


class MemberState(enum.Enum):
    PENDING = "pending"  # its join is queued, or on its way to Redis
    JOINED = "joined"
    REFUSED = "refused"  # its username is someone else's, in this room, on some process
    FAILED = "failed"  # Redis could not be reached: it was told to try again later


class InOrder:
    """A connection whose posts go through Redis, and the replies that must not overtake them.

    ``posted`` counts the posts sent, ``settled`` those back (delivered to it, or failed); a
    reply made while some are out waits for exactly those, not for later ones.
    """

    __slots__ = ("held", "peer", "posted", "settled")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.posted = 0
        self.settled = 0
        self.held: deque[tuple[int, object]] = deque()  # (posts before it, reply)

    def reply(self, frame: object) -> None:
        """Send ``frame`` now, or once the posts sent before it are back."""
        if self.settled >= self.posted:
            self.peer.send(frame)
        else:
            self.held.append((self.posted, frame))

    def settle(self, frame: object | None = None) -> None:
        """One post is back: send what it produced (``frame``, e.g. its error), then the held."""
        self.settled = min(self.settled + 1, self.posted)
        if frame is not None:
            self.peer.send(frame)
        while self.held and self.held[0][0] <= self.settled:
            self.peer.send(self.held.popleft()[1])

    def settle_all(self) -> None:
        """Posts that will never come back (pub/sub lost them): release every reply."""
        self.settled = self.posted
        while self.held:
            self.peer.send(self.held.popleft()[1])


class Member(InOrder):
    """One local connection in a shared room; ``joined_id`` is the id of its join event."""

    __slots__ = ("joined_id", "last_id", "state", "username")

    def __init__(self, username: str, peer: Peer, last_id: int | None) -> None:
        super().__init__(peer)
        self.username = username
        self.last_id = last_id
        self.state = MemberState.PENDING
        self.joined_id = 0


Post = Callable[["SharedRoom", Member, SendMessage], None]


class SharedRoom:
    """The local members of one shared room, and the delivery of its events to them.

    ``members`` (username → Peer, join order) is what the chat endpoint's ``receive`` checks,
    as with ``ChatRoom``; ``post`` queues the message for Redis (``RedisRooms`` does the I/O).
    """

    def __init__(self, name: str, post: Post) -> None:
        self.name = name
        self.members: dict[str, Peer] = {}
        self.last_seen: int | None = None  # the newest event delivered here
        self.queued = 0  # commands for this room not yet answered by Redis
        self._post = post
        self._member: dict[str, Member] = {}
        self._group = Group()  # members that are sent every event as it comes
        self._waiting: list[Member] = []  # admitted, but their join is ahead of ``last_seen``
        self._recent: deque[RoomEvent] = deque(maxlen=RECENT_EVENTS)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, username: object) -> bool:
        return username in self.members

    @property
    def users(self) -> list[str]:
        """This process's members of the room, in the order they joined."""
        return list(self.members)

    def member(self, username: str) -> Member | None:
        return self._member.get(username)

    def joined(self) -> list[Member]:
        return [m for m in self._member.values() if m.state is MemberState.JOINED]

    def add(self, username: str, peer: Peer, last_id: int | None) -> Member:
        """A new local connection; it gets nothing until ``admit``."""
        member = self._member[username] = Member(username, peer, last_id)
        self.members[username] = peer
        return member

    def remove(self, username: str, peer: Peer) -> Member | None:
        """Take ``peer`` out if it is still ``username``'s connection here; return its member."""
        member = self._member.get(username)
        if member is None or member.peer is not peer:
            return None
        del self._member[username], self.members[username]
        self._group.discard(peer)
        if member in self._waiting:
            self._waiting.remove(member)
        return member

    def post(self, username: str, message: SendMessage) -> None:
        """Queue a member's message for Redis; its ack comes with the event (``deliver``)."""
        member = self._member[username]
        member.posted += 1
        self._post(self, member, message)

    def reply(self, username: str, frame: object) -> None:
        """A frame for that member alone, after the messages it posted before (see above)."""
        self._member[username].reply(frame)

    def admit(self, member: Member, join_id: int, frames: list[object]) -> None:
        """Its join got ``join_id``: send it ``frames`` (its history), then every later event."""
        member.state = MemberState.JOINED
        member.joined_id = join_id
        if self._member.get(member.username) is not member:
            return  # it left while its join was on its way
        for frame in frames:
            member.peer.send(frame)
        if self.last_seen is None:
            self.last_seen = join_id  # older events still on their way concern nobody here
        if self.last_seen < join_id:
            self._waiting.append(member)
            return
        later = [event for event in self._recent if event.id > join_id]
        if len(later) < self.last_seen - join_id:
            member.peer.close(TRY_AGAIN_LATER, "Missed events: reconnect with last_id")
            return
        for event in later:
            self._send(member, event)
        self._group.add(member.peer)

    def deliver(self, event: RoomEvent) -> None:
        """The room's next event, from Redis: to every admitted member whose join came before it."""
        if self.last_seen is not None and event.id <= self.last_seen:
            return  # seen already (a gap filled from the stream, then pub/sub's copy)
        self.last_seen = event.id
        self._recent.append(event)
        for member in [m for m in self._waiting if m.joined_id < event.id]:
            self._waiting.remove(member)
            self._group.add(member.peer)
        self._group.broadcast(event)
        if isinstance(event, MessageEvent):
            sender = self._member.get(event.username)
            if sender is not None and sender.state is MemberState.JOINED:
                if sender not in self._waiting:  # it has just been sent its own message
                    self._came_back(sender, event)

    def missed(self) -> None:
        """Events are lost for good here (evicted before we could fetch them): everyone resumes."""
        for member in list(self._member.values()):
            member.peer.close(TRY_AGAIN_LATER, "Missed events: reconnect with last_id")

    def _send(self, member: Member, event: RoomEvent) -> None:
        member.peer.send(event)
        if isinstance(event, MessageEvent) and event.username == member.username:
            self._came_back(member, event)

    @staticmethod
    def _came_back(sender: Member, event: MessageEvent) -> None:
        """The sender's own message reached it: ack it, and release what waited behind it.

        The sender is on this process if anyone of that name is: names are unique per room.
        """
        ack = None
        if event.client_msg_id is not None:
            ack = AckFrame(client_msg_id=event.client_msg_id, id=event.id)
        sender.settle(ack)
