"""The app's shared state, behind one interface: in this process, or shared through Redis.

``Backend`` is what the app asks for once, in ``create_app``: the chat's rooms (lesson 04), the
lobby (lesson 05), lesson 03's broadcast state, the notifications (lesson 08), and lesson 06's
login counts and signed-out tokens. ``InProcessBackend`` keeps all of it in this process: the
default, nothing to install or run. ``shared.RedisBackend`` (lesson 07) shares it with every
process that uses the same Redis, over one connection per process. Each piece has its own
interface below, and both backends provide every one of them, so an endpoint is the same code
for both. The pieces' methods that endpoints call in a loop never await (the Redis ones queue,
and a task sends the queue), so the in-process path pays nothing for the option.

``create_backend(settings)`` picks one from ``settings.redis_url`` (``redis`` is imported only
then); the app's lifespan is ``async with backend:``, which connects to Redis, or does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from course_server.lessons.broadcast import BroadcastState, UserDirectory
from course_server.lessons.chat import ChatRoom, ChatRooms
from course_server.lessons.feed import Feed
from course_server.lessons.lobby import RoomManager
from course_server.lessons.notifications import InProcess, Notifier
from course_server.realtime.fanout import Group, Peer
from course_server.realtime.messages import SendMessage
from course_server.security.revocation import InProcessRevocations, Revocations
from course_server.security.throttle import Failures, InProcessFailures
from course_server.settings import Settings


@runtime_checkable
class Room(Protocol):
    """One chat room, as the endpoint's ``receive`` uses it."""

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


R = TypeVar("R", bound=Room)


@runtime_checkable
class Rooms(Protocol[R]):
    """Every chat room (``app.state.chat_rooms``); none of the sync methods may await."""

    def taken(self, name: str, username: str) -> bool:
        """Is ``username`` connected to room ``name`` through this process?"""
        ...

    def join(self, name: str, username: str, peer: Peer, last_id: int | None = None) -> R:
        """History (or resume after ``last_id``) to ``peer``, then the join to everyone."""
        ...

    def leave(self, room: R, username: str, peer: Peer) -> None:
        """The leave to everyone else; an emptied room is freed."""
        ...

    async def fetch_users(self, name: str) -> list[str]:
        """Everyone in room ``name``, on every process, in join order."""
        ...


@runtime_checkable
class Lobby(Protocol):
    """Lesson 05's lobby (``app.state.lobby``); none of the sync methods may await."""

    def join(self, peer: Peer, room: str, name: str | None = None) -> None:
        """Move ``peer`` to ``room`` (leaving its old one), or give it a new name there."""
        ...

    def leave(self, peer: Peer) -> str | None:
        """Take ``peer`` out of its room, if any; return that room's name."""
        ...

    def say(self, peer: Peer, content: str) -> bool:
        """Send ``content`` to everyone in ``peer``'s room, itself included; False if no room."""
        ...

    def reply(self, peer: Peer, frame: object) -> None:
        """A frame for ``peer`` alone, after the messages it sent before."""
        ...

    def forget(self, peer: Peer) -> None:
        """The connection ended: free its seat."""
        ...

    async def fetch_counts(self) -> dict[str, int]:
        """Members per room, on every process, by room name."""
        ...

    def stats(self) -> dict[str, int]:
        """This process's rooms and seated members: what its memory grows with."""
        ...

    async def wait_empty(self) -> None:
        """Return once this process has no member in any room."""
        ...


@runtime_checkable
class Broadcast(Protocol):
    """Lesson 03's ``/ws/broadcast`` group and ``/ws/users`` directory (``app.state.broadcast``).

    Through Redis they are subclasses whose sends reach every process (``relay``).
    """

    @property
    def everyone(self) -> Group: ...

    @property
    def users(self) -> UserDirectory: ...


@runtime_checkable
class Backend(Protocol):
    """Everything the app shares between connections, and between processes if configured."""

    @property
    def rooms(self) -> Rooms[Any]:
        """The chat's rooms (lesson 04)."""
        ...

    @property
    def lobby(self) -> Lobby:
        """The lobby (lesson 05)."""
        ...

    @property
    def broadcast(self) -> Broadcast:
        """Lesson 03's broadcast and private messages."""
        ...

    @property
    def notifications(self) -> Feed:
        """This process's feed of notifications, which SSE subscribers read (lesson 08)."""
        ...

    @property
    def notifier(self) -> Notifier:
        """What gives each notification its id and gets it into every process's feed."""
        ...

    @property
    def login_failures(self) -> Failures:
        """Failed logins, counted per username and per address (lesson 06)."""
        ...

    @property
    def revocations(self) -> Revocations:
        """Signed-out tokens (lesson 06)."""
        ...

    async def problem(self) -> str | None:
        """Why this process cannot serve now, or ``None`` (``/readyz``)."""
        ...

    async def __aenter__(self) -> Backend:
        """Connect for the server's lifetime."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """Say goodbye and disconnect."""
        ...


class InProcessBackend:
    """The default: every piece in this process's memory; nothing to connect to."""

    def __init__(self, settings: Settings) -> None:
        self.rooms: Rooms[ChatRoom] = ChatRooms(settings.history_size)
        self.lobby: Lobby = RoomManager()
        self.broadcast: Broadcast = BroadcastState()
        self.notifications = Feed()
        self.notifier: Notifier = InProcess(self.notifications)
        self.login_failures: Failures = InProcessFailures(
            settings.login_max_failures, settings.login_window
        )
        self.revocations: Revocations = InProcessRevocations()

    async def problem(self) -> str | None:
        return None  # nothing outside this process to wait for

    async def __aenter__(self) -> InProcessBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


def create_backend(settings: Settings) -> Backend:
    """In this process, or with ``settings.redis_url`` shared through Redis."""
    if not settings.redis_url:
        return InProcessBackend(settings)
    from course_server.scaling.shared import RedisBackend  # only now: it imports redis

    return RedisBackend(settings)
