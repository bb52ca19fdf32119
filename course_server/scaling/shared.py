"""Lesson 07: the app's backend shared through Redis by every process that uses the same one.

``RedisBackend`` has every piece of ``backend.Backend``, each the Redis twin of the in-process
one: the chat's rooms (``rooms``), the lobby (``lobby``), lesson 03's relay (``relay``), the
notifications (``feed``), the login counts (``throttle``) and the signed-out tokens
(``revocation``). They all go through one ``link.RedisLink``, this process's connection, which
entering the backend opens, and leaving it closes after each piece has sent what it still had
queued.

Imported only when a Redis URL is configured: the in-process default never loads ``redis``.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from course_server.lessons.feed import Feed
from course_server.lessons.notifications import Notifier
from course_server.scaling.backend import Broadcast, Lobby, Rooms
from course_server.scaling.feed import RedisFeed
from course_server.scaling.link import RedisLink
from course_server.scaling.lobby import RedisLobby
from course_server.scaling.relay import Relay, shared_state
from course_server.scaling.revocation import RedisRevocations
from course_server.scaling.rooms import RedisRooms
from course_server.scaling.shared_room import SharedRoom
from course_server.scaling.throttle import RedisFailures
from course_server.security.revocation import Revocations
from course_server.security.throttle import Failures
from course_server.settings import Settings


class Part(Protocol):
    """A piece with tasks of its own, started once the link is up and closed before it."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class RedisBackend:
    """Every piece of the app's shared state, in Redis, over this process's one link."""

    def __init__(self, settings: Settings) -> None:
        self.link = RedisLink(settings.redis_url)
        rooms = RedisRooms(self.link, history_size=settings.history_size)
        lobby = RedisLobby(self.link)
        relay = Relay(self.link)
        self.notifications = Feed()
        notifier = RedisFeed(self.link, self.notifications)
        self._parts: list[Part] = [rooms, lobby, relay, notifier]  # started in this order
        self.rooms: Rooms[SharedRoom] = rooms
        self.lobby: Lobby = lobby
        self.broadcast: Broadcast = shared_state(relay)
        self.notifier: Notifier = notifier
        self.login_failures: Failures = RedisFailures(
            self.link, settings.login_max_failures, settings.login_window
        )
        self.revocations: Revocations = RedisRevocations(self.link)
        self._stack = contextlib.AsyncExitStack()

    async def problem(self) -> str | None:
        return await self.link.problem()

    async def __aenter__(self) -> RedisBackend:
        """Connect, then start each piece; raise (closing what started) if Redis is unreachable."""
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.link)
            for part in self._parts:
                await part.start()
                stack.push_async_callback(part.aclose)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Each piece sends what it still has queued and stops, last started first; disconnect."""
        await self._stack.aclose()
