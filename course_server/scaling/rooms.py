"""Lesson 07: chat rooms shared by every server process that uses the same Redis.

``RedisRooms`` has the methods of lesson 04's ``ChatRooms`` that the chat endpoint calls, and
like them they never await: each only queues a command (join, post, leave), as lesson 03's
``Peer.send`` only queues a frame. One task per process sends the queued commands to Redis in
order, many per round trip, each as one Lua script (``redis_scripts``), and hands each result
to its member (``redis_commands``). Events reach every process through pub/sub, in id order;
history, resume and any gap come from the room's stream (``redis_intake``). Presence:
``redis_presence``.

When Redis is unreachable, nothing is dropped silently: a message gets an ``unavailable`` error
(resend it; with a ``client_msg_id`` it is never recorded twice), a join is closed with 1013
(try again later), and a leave is retried until Redis takes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import Callable

import redis.asyncio as redis
from fastapi import HTTPException

from course_server.lessons.chat import MIN_REMEMBERED_MSG_IDS
from course_server.realtime.fanout import Peer
from course_server.realtime.messages import ErrorCode, SendMessage, error
from course_server.scaling.commands import Command, Followup, finish, to_call
from course_server.scaling.intake import Intake
from course_server.scaling.link import (
    FAILURES,
    SUBSCRIBE_TIMEOUT,
    Call,
    Guest,
    Scripts,
    Subscriber,
    connect,
    flush,
    stop_tasks,
)
from course_server.scaling.presence import Presence
from course_server.scaling.scripts import PREFIX, RoomKeys, room_keys
from course_server.scaling.shared_room import TRY_AGAIN_LATER, Member, MemberState, SharedRoom

log = logging.getLogger("course_server.redis")

HEARTBEAT = 1.0
PRESENCE_TTL = 3.0
QUEUE_LIMIT = 10_000  # joins and posts waiting for Redis, beyond which they are refused
BATCH = 256  # commands per round trip


class RedisRooms:
    """Every shared room this process serves (``app.state.chat_rooms`` when Redis is configured)."""

    def __init__(
        self,
        url: str,
        *,
        history_size: int = 50,
        heartbeat: float = HEARTBEAT,
        presence_ttl: float = PRESENCE_TTL,
    ) -> None:
        self.url = url
        self.history_size = history_size
        self.process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._sent_limit = max(history_size * 4, MIN_REMEMBERED_MSG_IDS)
        self._rooms: dict[str, SharedRoom] = {}
        self._by_channel: dict[str, SharedRoom] = {}
        self._queue: deque[Command] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while no command is queued or on its way
        self._idle.set()
        self._changed = asyncio.Event()
        self._freed: set[str] = set()  # channels of freed rooms, to unsubscribe from
        self._retry: list[Command] = []  # leaves Redis did not take yet
        self._resync = False  # Redis does not know some member of ours: register them again
        self._tasks: list[asyncio.Task[None]] = []
        self._client = connect(url, f"course:{self.process}")
        self._scripts = Scripts(self._client)
        self.presence = Presence(
            self._client,
            self._scripts,
            self.process,
            interval=heartbeat,
            ttl=presence_ttl,
            history_size=history_size,
            on_beat=self._on_beat,
        )
        self.intake = Intake(self._client, self._by_channel)
        self.subscriber = Subscriber(
            self._client,
            f"{PREFIX}proc:{self.process}",
            on_message=self._on_message,
            on_subscribed=self.intake.on_subscribed,
            on_reconnected=self._on_reconnected,
        )
        self._guests: list[Guest] = []

    # Other shared structures (the lobby) ride on this process's connections and heartbeat ----

    @property
    def client(self) -> redis.Redis:
        return self._client

    def host(self, guest: Guest) -> None:
        """Route ``guest.prefix``'s channels to ``guest`` and tell it of heartbeats, reconnects.

        Guests start after this process is connected and registered, and close before it does.
        """
        self._guests.append(guest)

    async def _on_message(self, channel: str, data: str) -> None:
        for guest in self._guests:
            if channel.startswith(guest.prefix):
                await guest.on_message(channel, data)
                return
        await self.intake.on_message(channel, data)

    def _on_reconnected(self) -> None:
        self.presence.poke()  # beat now, to register again if Redis lost us
        for guest in self._guests:
            guest.on_reconnected()

    # Lifecycle (the app's lifespan) -----------------------------------------------------------

    async def start(self) -> None:
        """Connect, register this process, start the tasks; raise if Redis cannot be reached."""
        try:
            await self._client.ping()
        except FAILURES as exc:
            raise RuntimeError(f"cannot reach Redis at {self.url}: {exc}") from exc
        await self._scripts.load()
        await self.presence.beat()
        loop = asyncio.get_running_loop()
        for work in (self.subscriber.run(), self._work(), self.presence.run()):
            self._tasks.append(loop.create_task(work))
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            await self.subscriber.connected.wait()
        for guest in self._guests:
            await guest.start()

    async def aclose(self, timeout: float = 2.0) -> None:
        """Send the leaves still queued (for up to ``timeout``), say goodbye, disconnect."""
        for guest in reversed(self._guests):  # they send through our connections: first
            await guest.aclose()
        await flush(self._idle, self._queue, "chat commands", timeout)
        await stop_tasks(self._tasks)
        try:
            await self.presence.retire()
        except FAILURES:
            pass  # our heartbeat expires by itself, and the others reap what we held
        await self._client.aclose()

    async def __aenter__(self) -> RedisRooms:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # What the chat endpoint calls: none of these awaits ---------------------------------------

    def taken(self, name: str, username: str) -> bool:
        """Taken *here*; whether another process has the name, the join script says."""
        room = self._rooms.get(name)
        return room is not None and username in room

    def join(self, name: str, username: str, peer: Peer, last_id: int | None = None) -> SharedRoom:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = SharedRoom(name, self._post)
            self._by_channel[RoomKeys.of(name).channel] = room
        member = room.add(username, peer, last_id)
        if not self._submit(Command("join", room, member)):
            member.state = MemberState.FAILED
            peer.send(error(ErrorCode.UNAVAILABLE, "the server is overloaded: try again later"))
            peer.close(TRY_AGAIN_LATER, "Try again later")
        self._notify()
        return room

    def leave(self, room: SharedRoom, username: str, peer: Peer) -> None:
        member = room.remove(username, peer)
        if member is not None and member.state in {MemberState.PENDING, MemberState.JOINED}:
            self._submit(Command("leave", room, member), force=True)
        self._free_if_empty(room)
        self._notify()

    def users(self, name: str) -> list[str]:
        """This process's members of ``name``; ``fetch_users`` asks Redis for everyone's."""
        room = self._rooms.get(name)
        return room.users if room is not None else []

    async def fetch_users(self, name: str) -> list[str]:
        """Everyone in ``name``, on every process, in join order."""
        keys = room_keys(RoomKeys.of(name), self.process)[:5]
        try:
            return await self._scripts.call("ROSTER", keys, [])
        except FAILURES as exc:
            raise HTTPException(503, "the chat cannot reach Redis") from exc

    def get(self, name: str) -> SharedRoom | None:
        return self._rooms.get(name)

    def __len__(self) -> int:
        return len(self._rooms)

    def __contains__(self, name: object) -> bool:
        return name in self._rooms

    async def wait_until(self, predicate: Callable[[RedisRooms], bool]) -> None:
        """Return once ``predicate(self)`` holds; checked after every local join and leave."""
        while not predicate(self):
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _post(self, room: SharedRoom, member: Member, message: SendMessage) -> None:
        if not self._submit(Command("post", room, member, message)):
            member.settle(error(ErrorCode.UNAVAILABLE, "the server is overloaded: send again"))

    def _submit(self, command: Command, *, force: bool = False) -> bool:
        if not force and len(self._queue) >= QUEUE_LIMIT:
            return False
        self._queue.append(command)
        command.room.queued += 1
        self._idle.clear()
        self._wake.set()
        return True

    def _free_if_empty(self, room: SharedRoom) -> None:
        """Forget an emptied room once Redis has answered for it, as ``ChatRooms`` frees one."""
        if room.members or room.queued or self._rooms.get(room.name) is not room:
            return
        del self._rooms[room.name]
        channel = RoomKeys.of(room.name).channel
        del self._by_channel[channel]
        self._freed.add(channel)
        self._wake.set()
        self._notify()

    # The worker: queued commands → Redis → results ---------------------------------------------

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            freed, self._freed = self._freed, set()
            for channel in freed - self._by_channel.keys():
                await self.subscriber.unsubscribe(channel)
            while self._queue:
                try:
                    await self._run_next()
                except Exception:  # a bug must not stop every room of this process
                    log.exception("commands for Redis failed")
            self._idle.set()

    async def _run_next(self) -> None:
        # A method of its own, so no local variable keeps a freed room alive between batches.
        batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
        try:
            await self._run(batch)
        finally:
            for command in batch:
                command.room.queued -= 1
                self._free_if_empty(command.room)

    async def _run(self, batch: list[Command]) -> None:
        """Send ``batch`` in one round trip, in order; hand each result to its member."""
        # Subscribe before a join is recorded, so no event after it can slip by unseen.
        channels = {RoomKeys.of(c.room.name).channel for c in batch if c.kind == "join"}
        unreachable: Exception | None = None
        try:
            await self.subscriber.subscribe(channels)
        except FAILURES as exc:
            unreachable = exc
        sent: list[tuple[Command, Call]] = []
        for command in batch:
            if command.kind == "join" and unreachable:
                continue
            call = to_call(command, self.process, self.history_size, self._sent_limit)
            if call is not None:
                sent.append((command, call))
        try:
            results = await self._scripts.run([call for _, call in sent])
        except FAILURES as exc:
            results = [exc] * len(sent)
        outcome = {id(command): result for (command, _), result in zip(sent, results, strict=True)}
        for command in batch:
            followup = finish(command, outcome.get(id(command), unreachable))
            if followup is Followup.RETRY:
                self._retry.append(command)
            elif followup is Followup.RESYNC:
                self._resync = True
                self.presence.poke()

    # Presence: what the heartbeat asks of the rooms --------------------------------------------

    def _on_beat(self, lost: bool) -> None:
        """After each heartbeat: register our members again if Redis lost them; retry leaves."""
        for guest in self._guests:
            guest.on_beat(lost)
        if lost or self._resync:
            self._resync = False
            for room in self._rooms.values():
                for member in room.joined():
                    self._submit(Command("rejoin", room, member), force=True)
        retry, self._retry = self._retry, []
        for command in retry:
            self._submit(command, force=True)
