"""The chat's broker: what the chat endpoint needs from "the rooms", and the two that provide it.

``Rooms`` is the interface. ``chat.ChatRooms`` (lesson 04) keeps every room in this process: the
default, nothing to install or run. ``redis_rooms.RedisRooms`` (lesson 07) shares rooms, ids,
history and presence with every process that uses the same Redis. The endpoint is the same for
both: their methods only queue (the Redis one sends the queue to Redis from a task of its own),
so the in-process path costs no extra ``await`` and the endpoint reads as it did in lesson 04.

``create_rooms(settings)`` picks one from ``settings.redis_url``; ``create_lobby(rooms)`` and
``create_broadcast(rooms)`` give the matching lobby (lesson 05) and lesson 03's broadcast state,
shared through Redis too when the rooms are (``redis_lobby``, ``redis_relay``). ``serving(rooms)``
is what the app's lifespan wraps around the server's life. ``redis`` is imported only when a URL
is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, cast

from course_server.lessons.broadcast import BroadcastState
from course_server.lessons.chat import ChatRooms
from course_server.lessons.lobby import RoomManager
from course_server.realtime.fanout import Peer
from course_server.realtime.messages import SendMessage
from course_server.settings import Settings


class Room(Protocol):
    """One room, as the endpoint's ``receive`` uses it."""

    name: str

    @property
    def members(self) -> Mapping[str, Peer]:
        """This process's members: username → Peer, in join order."""
        ...

    def post(self, username: str, message: SendMessage) -> object:
        """A member says something: give it the room's next id and send it to everyone."""
        ...

    def reply(self, username: str, frame: object) -> None:
        """A frame for that member alone, never ahead of the messages it posted before."""
        ...


class Rooms(Protocol):
    """Every room of the app (``app.state.chat_rooms``); none of the sync methods may await."""

    def taken(self, name: str, username: str) -> bool:
        """Is ``username`` connected to room ``name`` through this process?"""
        ...

    def join(self, name: str, username: str, peer: Peer, last_id: int | None = None) -> Room:
        """History (or resume after ``last_id``) to ``peer``, then the join to everyone."""
        ...

    def leave(self, room: Room, username: str, peer: Peer) -> None:
        """The leave to everyone else; an emptied room is freed."""
        ...

    async def fetch_users(self, name: str) -> list[str]:
        """Everyone in room ``name``, on every process, in join order."""
        ...


def create_rooms(settings: Settings) -> Rooms:
    """The in-process rooms, or with ``settings.redis_url`` rooms shared through Redis."""
    if not settings.redis_url:
        return ChatRooms(settings.history_size)
    from course_server.scaling.rooms import RedisRooms  # only now: it imports redis

    return RedisRooms(settings.redis_url, history_size=settings.history_size)


def create_lobby(rooms: Rooms) -> RoomManager:
    """Lesson 05's lobby; with rooms shared through Redis, a lobby shared the same way."""
    if isinstance(rooms, ChatRooms):
        return RoomManager()
    from course_server.scaling.lobby import RedisLobby
    from course_server.scaling.rooms import RedisRooms

    assert isinstance(rooms, RedisRooms)
    return cast(RoomManager, RedisLobby(rooms))  # same methods, as the endpoint uses them


def create_broadcast(rooms: Rooms) -> BroadcastState:
    """Lesson 03's broadcast and private messages; through Redis when the rooms are there."""
    if isinstance(rooms, ChatRooms):
        return BroadcastState()
    from course_server.scaling.relay import shared_state
    from course_server.scaling.rooms import RedisRooms

    assert isinstance(rooms, RedisRooms)
    return shared_state(rooms)


@asynccontextmanager
async def serving(rooms: Rooms) -> AsyncIterator[None]:
    """Connect a shared broker for the server's lifetime (nothing to do for the in-process one).

    What shares its connections (the lobby, lesson 03's relay) starts and stops with it.
    """
    if isinstance(rooms, AbstractAsyncContextManager):
        async with rooms:
            yield
    else:
        yield
