"""Lesson 04, the chat application: rooms with ids, bounded history and resume after reconnect.

The room logic does no I/O, like the protocol core of ``websockets``: ``ChatRoom`` decides which
frames go to whom and hands them to each member's ``Peer``, whose ``send()`` only queues (see
``fanout.py``). So a room can be driven in a unit test with fake peers, no sockets at all, and a
broadcast can never be stalled by a slow member. The endpoint at the bottom is the only code that
touches the WebSocket.

Fixed from the seed's ``ChatRoom``: history is a bounded deque (the seed's list grew forever and
only *sending* was capped at 50); broadcast never awaits a member; every event has an id, so a
client can reconnect with ``?last_id=N`` and get exactly what it missed; "Username taken" is
sent after ``accept()`` so the client sees 4000 (before it, the client only sees HTTP 403); bad
input gets an error frame instead of killing the connection; an emptied room is freed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, WebSocket
from pydantic import BaseModel
from starlette.requests import HTTPConnection

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.fanout import Group, Peer, PeerState
from course_server.realtime.messages import (
    PONG,
    AckFrame,
    ErrorFrame,
    JoinEvent,
    LeaveEvent,
    MessageEvent,
    Ping,
    ResumeFrame,
    SendMessage,
    parse,
)
from course_server.realtime.names import BadName, plain_name
from course_server.realtime.ratelimit import FloodGuard, flood_guard
from course_server.realtime.roomlog import E, MemoryLog, RoomLog
from course_server.security.secure import identify, refuse_impostor

if TYPE_CHECKING:  # the interface lives with the backends, which import this module
    from course_server.scaling.backend import Room, Rooms

router = APIRouter(tags=["lesson 04: chat"])

MIN_REMEMBERED_MSG_IDS = 256


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChatRoom:
    """One room: its members (username → Peer, in join order), its log, its sent-message memory.

    Every method is synchronous: with no ``await`` inside, no other task can change the room
    halfway through, so a join, a message or a leave is applied whole, in one order for all.
    """

    def __init__(
        self,
        name: str,
        *,
        history_size: int = 50,
        log: RoomLog | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.name = name
        self.log: RoomLog = log if log is not None else MemoryLog(history_size)
        self.members: dict[str, Peer] = {}
        self._group = Group()
        self._now = now
        # (username, client_msg_id) → assigned id, oldest first; bounded, so resends are
        # recognised for a while without remembering every message forever.
        self._sent: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._sent_limit = max(history_size * 4, MIN_REMEMBERED_MSG_IDS)

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, username: object) -> bool:
        return username in self.members

    @property
    def users(self) -> list[str]:
        """Usernames in the order they joined."""
        return list(self.members)

    def join(self, username: str, peer: Peer, last_id: int | None = None) -> None:
        """Catch the newcomer up (history, or resume after ``last_id``), then announce it."""
        if username in self.members:
            raise ValueError(f"{username!r} is already in room {self.name!r}")
        if last_id is None:
            for event in self.log.recent():
                peer.send(event)
        else:
            replay = self.log.since(last_id)
            peer.send(
                ResumeFrame(complete=replay.complete, after=last_id, oldest_id=replay.oldest_id)
            )
            for event in replay.events:
                peer.send(event)
        self.members[username] = peer
        self._group.add(peer)
        self._record(JoinEvent, username, f"{username} joined the room")

    def leave(self, username: str, peer: Peer) -> bool:
        """Remove ``peer`` if it is still ``username``'s connection; tell everyone else."""
        if self.members.get(username) is not peer:
            return False
        del self.members[username]
        self._group.discard(peer)
        self._record(LeaveEvent, username, f"{username} left the room")
        return True

    def reply(self, username: str, frame: object) -> None:
        """A frame for one member only (an error, a pong), in order with what it posted.

        Here a post is broadcast at once, so a reply cannot overtake it; ``SharedRoom.reply``
        (lesson 07) has to hold one back while the member's post is on its way through Redis.
        """
        self.members[username].send(frame)

    def post(self, username: str, message: SendMessage) -> MessageEvent | None:
        """Broadcast a member's message; ack it if it has a ``client_msg_id``.

        A resend of a ``client_msg_id`` this user already sent here is acked again with the
        original id and not broadcast: returns None then.
        """
        peer = self.members[username]
        key = message.client_msg_id
        if key is not None and (username, key) in self._sent:
            peer.send(AckFrame(client_msg_id=key, id=self._sent[username, key]))
            return None
        event = self._record(MessageEvent, username, message.content, client_msg_id=key)
        if key is not None:
            self._sent[username, key] = event.id
            if len(self._sent) > self._sent_limit:
                self._sent.popitem(last=False)
            peer.send(AckFrame(client_msg_id=key, id=event.id))
        return event

    # ``extra``: fields of ``kind`` itself (MessageEvent's client_msg_id), which RoomEvent lacks.
    def _record(self, kind: type[E], username: str, content: str, **extra: Any) -> E:
        """Give the event an id, keep it in history, queue it for every member."""
        timestamp = self._now()

        def build(event_id: int) -> E:
            return kind(
                username=username, content=content, timestamp=timestamp, id=event_id, **extra
            )

        event = self.log.append(build)
        self._group.broadcast(event)
        return event


class ChatRooms:
    """Every room of one app (``app.state.chat_rooms``): created on first join, freed when empty.

    A freed room leaves nothing behind, so memory depends on the rooms in use, not on every room
    ever used. A new room's ids start after the last id of every room freed so far, so a client
    holding an id from an earlier room of the same name can never mistake a new event for one it
    already saw: its resume is reported incomplete instead.
    """

    def __init__(self, history_size: int = 50) -> None:
        self.history_size = history_size
        self._rooms: dict[str, ChatRoom] = {}
        self._last_id = 0
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, name: object) -> bool:
        return name in self._rooms

    def get(self, name: str) -> ChatRoom | None:
        return self._rooms.get(name)

    def users(self, name: str) -> list[str]:
        room = self._rooms.get(name)
        return room.users if room is not None else []

    async def fetch_users(self, name: str) -> list[str]:
        """``users(name)``, for the endpoint: a broker shared by processes has to ask Redis."""
        return self.users(name)

    def taken(self, name: str, username: str) -> bool:
        room = self._rooms.get(name)
        return room is not None and username in room

    def join(self, name: str, username: str, peer: Peer, last_id: int | None = None) -> ChatRoom:
        """Add ``username`` to room ``name``, creating it if needed; see ``ChatRoom.join``."""
        room = self._rooms.get(name)
        if room is None:
            log = MemoryLog(self.history_size, first_id=self._last_id + 1)
            room = self._rooms[name] = ChatRoom(name, history_size=self.history_size, log=log)
        room.join(username, peer, last_id)
        self._notify()
        return room

    def leave(self, room: ChatRoom, username: str, peer: Peer) -> None:
        """Take ``username`` out of ``room``; free the room if that emptied it."""
        room.leave(username, peer)
        if not room and self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            self._last_id = max(self._last_id, room.log.last_id)
        self._notify()

    async def wait_until(self, predicate: Callable[[ChatRooms], bool]) -> None:
        """Return once ``predicate(self)`` holds; it is checked after every join and leave."""
        while not predicate(self):
            await self._changed.wait()

    def _notify(self) -> None:
        # One event per change, replaced after it fires: every waiter wakes once, none misses it.
        self._changed.set()
        self._changed = asyncio.Event()


def receive(room: Room, username: str, peer: Peer, guard: FloodGuard, frame: str | bytes) -> None:
    """Handle one frame from ``peer``: rate limit, validate, then post or answer an error."""
    if room.members.get(username) is not peer or peer.state is not PeerState.OPEN:
        return  # closing: what arrives meanwhile is dropped
    if not guard.admit(peer, lambda frame: room.reply(username, frame)):
        return
    message = parse(frame)
    if isinstance(message, ErrorFrame):
        room.reply(username, message)
    elif isinstance(message, Ping):
        room.reply(username, PONG)  # lesson 09: the heartbeat a browser can send
    else:
        room.post(username, message)


# Endpoints: the only code here that does I/O. -----------------------------------------------


def get_rooms(connection: HTTPConnection) -> Rooms[Any]:
    """The app's rooms: lesson 04's ``ChatRooms``, or with Redis its shared twin (lesson 07)."""
    rooms: Rooms[Any] = connection.app.state.chat_rooms
    return rooms


class RoomUsers(BaseModel):
    users: list[str]


@router.websocket("/chat/{room}/{username}")
async def chat(
    websocket: WebSocket,
    room: str,
    username: str,
    last_id: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """A chat room member: history (or resume after ``last_id``), then messages both ways."""
    settings = websocket.app.state.settings
    rooms = get_rooms(websocket)
    await websocket.accept()
    try:  # lesson 09: refused after accept(), so the client reads why
        room, username = plain_name("room name", room), plain_name("username", username)
    except BadName as exc:
        await websocket.close(CloseCode.INVALID_NAME, str(exc))
        return
    if await refuse_impostor(websocket, username):  # lesson 06: a registered name needs proof
        return
    if rooms.taken(room, username):
        # After accept(), so the client gets the code; before it, it would only see HTTP 403.
        await websocket.close(CloseCode.USERNAME_TAKEN, "Username taken")
        return
    peer = websocket.app.state.peers.open(websocket)
    # No await since the check above, so nobody can have taken the name in between.
    chat_room = rooms.join(room, username, peer, last_id)
    # Lesson 09: a user's connections (rooms, tabs, other channels) share one budget.
    budget = (await identify(websocket)).budget
    try:
        with flood_guard(websocket.app.state.user_buckets, budget, settings.rate_limit) as guard:
            async for message in peer.incoming():
                text = message.get("text")
                frame = text if text is not None else message["bytes"]
                receive(chat_room, username, peer, guard, frame)
    finally:
        rooms.leave(chat_room, username, peer)
        await peer.aclose()


@router.get("/rooms/{room}/users")
async def room_users(room: str, connection: HTTPConnection) -> RoomUsers:
    """Who is in ``room`` now, in join order (an unknown room is just empty)."""
    try:
        room = plain_name("room name", room)
    except BadName as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return RoomUsers(users=await get_rooms(connection).fetch_users(room))
