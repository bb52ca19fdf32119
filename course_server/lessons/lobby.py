"""Lesson 05, broadcast and rooms: a lobby where each client is in at most one room at a time.

``WS /ws/lobby`` speaks JSON text frames. A client sends ``join`` (moves it to a room, leaving
the one it was in), ``leave`` (back to no room, still connected) or ``message`` (to everyone in
its room, itself included). See ``ClientFrame`` and the server frames below it.

The source chapter's version, ``seed.rooms.SeedRoomManager``, has four bugs (listed there).
``RoomManager`` fixes all four: it never awaits (each ``Peer`` has its own bounded queue and
writer, see ``fanout.py``), so nothing can change a room mid-loop and nobody waits for anybody;
and a room is deleted when its last member leaves, so memory follows the members present, not
history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.fanout import Group, Peer, PeerState
from course_server.realtime.messages import ErrorCode, error, explain
from course_server.realtime.names import plain
from course_server.realtime.ratelimit import FloodGuard, flood_guard
from course_server.security.secure import claim_problem, identify

router = APIRouter(tags=["lesson 05: lobby"])


# --- Frames a client sends: a discriminated union on "type" ---------------------------------


class Join(BaseModel):
    """``{"type": "join", "room": R}``, with an optional display name for the presence list.

    The name holds for this stay in the room: joining again without one makes you anonymous.
    Room and name follow the app's name rule; a registered user's name needs that user's token
    (``secure.refuse_impostor``), or the connection is closed with 4003.
    """

    type: Literal["join"] = "join"
    room: Annotated[str, plain("room name")]
    name: Annotated[str, plain("name")] | None = None


class Leave(BaseModel):
    """``{"type": "leave"}``: leave the current room and stay connected."""

    type: Literal["leave"] = "leave"


class Message(BaseModel):
    """``{"type": "message", "content": C}``, relayed to the room in exactly this shape."""

    type: Literal["message"] = "message"
    content: str = Field(max_length=2000)


ClientFrame = Annotated[Join | Leave | Message, Field(discriminator="type")]
client_frames: TypeAdapter[Join | Leave | Message] = TypeAdapter(ClientFrame)


# --- Frames the server sends -----------------------------------------------------------------


class System(BaseModel):
    """Sent to the *other* members when someone joins or leaves their room."""

    type: Literal["system"] = "system"
    message: str


class Presence(BaseModel):
    """Who is in ``room`` now; sent to the whole room after every join and leave.

    ``count`` counts every member; ``names`` lists, sorted, the names members gave on joining
    (a member who gave none is counted but not named: the lobby is anonymous by default).
    """

    type: Literal["presence"] = "presence"
    room: str
    count: int
    names: list[str]


class Left(BaseModel):
    """Sent to a client that left ``room``, by ``leave`` or by joining another room."""

    type: Literal["left"] = "left"
    room: str


# Errors are ``messages.ErrorFrame``s, with a code from ``messages.ErrorCode``: the app's one list.

JOINED = System(message="A user joined the room")
LEFT = System(message="A user left the room")


# --- The lobby done right --------------------------------------------------------------------


@dataclasses.dataclass
class Room:
    """One room: who is in it, with the name each gave (``None``: anonymous), and their Group.

    Membership lives in ``names``, not in the group: ``Group.broadcast`` prunes a closed peer at
    once, but the peer is a member until its endpoint calls ``leave``.
    """

    group: Group = dataclasses.field(default_factory=Group)
    names: dict[Peer, str | None] = dataclasses.field(default_factory=dict)


class RoomManager:
    """Rooms of peers, each peer in at most one room; empty rooms are deleted at once.

    Every method is synchronous: with no ``await`` inside, no other task can join, leave or
    disconnect halfway through, and a broadcast only queues frames (``Group.broadcast``), so a
    slow or dead member delays nobody. The app keeps one on ``app.state.lobby``.
    """

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self._where: dict[Peer, str] = {}  # peer -> its room; kept in step with Room.names
        self._empty = asyncio.Event()  # set while there are no rooms at all
        self._empty.set()

    def join(self, peer: Peer, room: str, name: str | None = None) -> None:
        """Move ``peer`` to ``room``: leave its old room, greet the new one, update presence."""
        if self._where.get(peer) == room:
            self.rooms[room].names[peer] = name  # already here: only the name may change
            self._announce(room)
            return
        self.leave(peer)
        target = self.rooms.get(room)
        if target is None:
            target = self.rooms[room] = Room()
            self._empty.clear()
        target.group.broadcast(JOINED)  # before adding: the joiner is not told about itself
        target.group.add(peer)
        target.names[peer] = name
        self._where[peer] = room
        self._announce(room)

    def leave(self, peer: Peer) -> str | None:
        """Take ``peer`` out of its room, if any; return that room's name.

        The room's dict entry goes with its last member: this is the seed's leak, fixed.
        """
        room = self._where.pop(peer, None)
        if room is None:
            return None
        target = self.rooms[room]
        del target.names[peer]
        target.group.discard(peer)
        peer.send(Left(room=room))  # False, harmlessly, if the peer is already gone
        if target.names:
            target.group.broadcast(LEFT)
            self._announce(room)
        else:
            del self.rooms[room]
            if not self.rooms:
                self._empty.set()
        return room

    def say(self, peer: Peer, content: str) -> bool:
        """Send ``content`` to everyone in ``peer``'s room, sender included; False if no room."""
        room = self._where.get(peer)
        if room is None:
            return False
        self.rooms[room].group.broadcast(Message(content=content))
        return True

    def reply(self, peer: Peer, frame: object) -> None:
        """A frame for ``peer`` alone (an error). Here at once; through Redis, see lesson 07."""
        peer.send(frame)

    def forget(self, peer: Peer) -> None:
        """The connection ended: free its seat."""
        self.leave(peer)

    def presence(self, room: str) -> Presence:
        names = self.rooms[room].names.values() if room in self.rooms else []
        given = sorted(name for name in names if name is not None)
        return Presence(room=room, count=len(names), names=given)

    def _announce(self, room: str) -> None:
        self.rooms[room].group.broadcast(self.presence(room))

    def counts(self) -> dict[str, int]:
        """Members per room, by room name."""
        return {name: len(room.names) for name, room in sorted(self.rooms.items())}

    async def fetch_counts(self) -> dict[str, int]:
        """``counts()``, for the endpoint: a lobby shared by processes has to ask Redis."""
        return self.counts()

    def stats(self) -> dict[str, int]:
        """How many rooms and seated members the manager holds: what its memory grows with."""
        return {"rooms": len(self.rooms), "members": len(self._where)}

    async def wait_empty(self) -> None:
        """Return once no room is left (at once if there is none)."""
        await self._empty.wait()


def handle(
    manager: RoomManager,
    peer: Peer,
    message: dict[str, Any],
    guard: FloodGuard,
    claim: Callable[[str], str | None],
) -> None:
    """Act on one frame from ``peer``; anything wrong gets an error frame back.

    Two things close the connection instead: a flood that goes on after ``rate_limited``
    errors (1008), and a join under a name this connection may not use (4003, with the reason
    ``claim(name)`` gives), so an impostor never takes a seat under a registered name.
    """
    if peer.state is not PeerState.OPEN:
        return  # closing: what arrives meanwhile is dropped
    if not guard.admit(peer, lambda frame: manager.reply(peer, frame)):
        return
    text = message.get("text")
    if text is None:
        manager.reply(
            peer, error(ErrorCode.BINARY_NOT_SUPPORTED, "send JSON text frames, not binary")
        )
        return
    try:
        frame = client_frames.validate_json(text)
    except ValidationError as exc:
        manager.reply(peer, error(*explain(exc, tagged=True)))
        return
    if isinstance(frame, Join):
        problem = claim(frame.name) if frame.name is not None else None
        if problem is not None:
            peer.close(CloseCode.INVALID_TOKEN, problem)
            return
        manager.join(peer, frame.room, frame.name)
    elif isinstance(frame, Leave):
        if manager.leave(peer) is None:
            manager.reply(peer, error(ErrorCode.NOT_IN_ROOM, "you are not in a room"))
    elif not manager.say(peer, frame.content):
        manager.reply(peer, error(ErrorCode.NOT_IN_ROOM, "join a room before sending messages"))


@router.websocket("/ws/lobby")
async def lobby_socket(websocket: WebSocket) -> None:
    """Join, leave and talk in rooms; see the module docstring and the frame models."""
    # A RoomManager, or with a Redis URL its shared twin (lesson 07's redis_lobby.RedisLobby).
    manager: RoomManager = websocket.app.state.lobby
    settings = websocket.app.state.settings
    await websocket.accept()
    identity = await identify(websocket)
    peer = websocket.app.state.peers.open(websocket)
    claim = functools.partial(claim_problem, websocket, identity)
    try:
        # Lesson 09: the same budget as the user's chat, whichever channel the flood comes on.
        buckets = websocket.app.state.user_buckets
        with flood_guard(buckets, identity.budget, settings.rate_limit) as guard:
            async for message in peer.incoming():
                handle(manager, peer, message, guard, claim)
    finally:
        # Whatever ended the connection (the client, a 4008 cut-off, shutdown), free its seat.
        manager.forget(peer)
        await peer.aclose()


@router.get("/lobby/rooms")
async def list_rooms(request: Request) -> dict[str, dict[str, int]]:
    """Every room the lobby holds, with its member count: ``{"rooms": {"blue": 2}}``."""
    return {"rooms": await request.app.state.lobby.fetch_counts()}
