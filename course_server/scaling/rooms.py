"""Lesson 07: chat rooms shared by every server process that uses the same Redis.

``RedisRooms`` has the methods of lesson 04's ``ChatRooms`` that the chat endpoint calls
(``backend.Rooms``), and like them they never await: each only queues a command (join, post,
leave), as lesson 03's ``Peer.send`` only queues a frame. Its ``worker.Worker`` sends the queued
commands to Redis in order: what was queued meanwhile (a loop tick's worth, at most
``worker.BATCH``) as one call of one Lua script (``scaling.scripts.BATCH``), and hands each result
to its member (``scaling.commands``). Events reach every process through pub/sub, in id order,
one message per room and batch; history, resume and any gap come from the room's stream
(``scaling.intake``). Presence, the process's heartbeat: ``scaling.presence``. All of it goes
through the process's ``link.RedisLink``.

When Redis is unreachable, nothing is dropped silently: a message gets an ``unavailable`` error
(resend it; with a ``client_msg_id`` it is never recorded twice), a join is closed with 1013
(try again later), and a leave is retried until Redis takes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import HTTPException

from course_server.lessons.chat import MIN_REMEMBERED_MSG_IDS
from course_server.realtime.fanout import Peer
from course_server.realtime.messages import ErrorCode, SendMessage, error
from course_server.scaling.commands import Command, Followup, finish, to_call
from course_server.scaling.intake import Intake
from course_server.scaling.link import FAILURES, Call, RedisLink, Scripts, stop_tasks
from course_server.scaling.presence import Presence
from course_server.scaling.scripts import PREFIX, RoomKeys, room_keys
from course_server.scaling.shared_room import TRY_AGAIN_LATER, Member, MemberState, SharedRoom
from course_server.scaling.worker import Worker

log = logging.getLogger("course_server.redis")

HEARTBEAT = 1.0
PRESENCE_TTL = 3.0
QUEUE_LIMIT = 10_000  # joins and posts waiting for Redis, beyond which they are refused


class RedisRooms:
    """Every shared room this process serves (``app.state.chat_rooms`` when Redis is configured)."""

    prefix = PREFIX + "room:"  # every room's channel (``RoomKeys``)

    def __init__(
        self,
        link: RedisLink,
        *,
        history_size: int = 50,
        heartbeat: float = HEARTBEAT,
        presence_ttl: float = PRESENCE_TTL,
    ) -> None:
        self.history_size = history_size
        self.heartbeat, self.presence_ttl = heartbeat, presence_ttl
        self._link = link
        self._sent_limit = max(history_size * 4, MIN_REMEMBERED_MSG_IDS)
        self._rooms: dict[str, SharedRoom] = {}
        self._by_channel: dict[str, SharedRoom] = {}
        self._worker = Worker(
            "chat commands", self._run, tidy=self._unsubscribe_freed, limit=QUEUE_LIMIT
        )
        self._changed = asyncio.Event()
        self._freed: set[str] = set()  # channels of freed rooms, to unsubscribe from
        self._retry: list[Command] = []  # leaves Redis did not take yet
        self._resync = False  # Redis does not know some member of ours: register them again
        self._beating: asyncio.Task[None] | None = None
        # Made by ``start``, on the link's client of this run:
        self._scripts: Scripts
        self.presence: Presence
        self.intake: Intake
        link.listen(self)

    # Lifecycle (the backend's) ----------------------------------------------------------------

    async def start(self) -> None:
        """Register this process and start the heartbeat and the worker (the link is up)."""
        client = self._link.client
        self._scripts = Scripts(client)
        self.presence = Presence(
            client,
            self._scripts,
            self._link.process,
            interval=self.heartbeat,
            ttl=self.presence_ttl,
            history_size=self.history_size,
            on_beat=self._link.beat,
        )
        self.intake = Intake(client, self._by_channel)
        await self._scripts.load()
        await self.presence.beat()
        self._worker.start()
        self._beating = asyncio.get_running_loop().create_task(self.presence.run())

    async def aclose(self, timeout: float = 2.0) -> None:
        """Send the leaves still queued (for up to ``timeout``), then say goodbye."""
        await self._worker.aclose(timeout)
        if self._beating is not None:
            await stop_tasks([self._beating])
            self._beating = None
        try:
            await self.presence.retire()
        except FAILURES:
            pass  # our heartbeat expires by itself, and the others reap what we held

    # What the link hands us -------------------------------------------------------------------

    async def on_message(self, channel: str, data: str) -> None:
        # One message per room and batch of some process's commands (``scripts.BATCH``): its
        # events, one per line, handed on in order; a receiver's writer sends them in one go.
        for event in data.split("\n"):
            await self.intake.on_message(channel, event)

    async def on_subscribed(self, channel: str) -> None:
        await self.intake.on_subscribed(channel)

    def on_reconnected(self) -> None:
        self.presence.poke()  # beat now, to register again if Redis lost us

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
        keys = room_keys(RoomKeys.of(name), self._link.process)[:5]
        try:
            users: list[str] = await self._scripts.call("ROSTER", keys, [])
        except FAILURES as exc:
            raise HTTPException(503, "the chat cannot reach Redis") from exc
        return users

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
        if not self._worker.submit(command, force=force):
            return False
        command.room.queued += 1
        return True

    def _free_if_empty(self, room: SharedRoom) -> None:
        """Forget an emptied room once Redis has answered for it, as ``ChatRooms`` frees one."""
        if room.members or room.queued or self._rooms.get(room.name) is not room:
            return
        del self._rooms[room.name]
        channel = RoomKeys.of(room.name).channel
        del self._by_channel[channel]
        self._freed.add(channel)
        self._worker.poke()
        self._notify()

    # The worker: queued commands → Redis → results ---------------------------------------------

    async def _unsubscribe_freed(self) -> None:
        freed, self._freed = self._freed, set()
        for channel in freed - self._by_channel.keys():
            await self._link.subscriber.unsubscribe(channel)

    async def _run(self, batch: list[Command]) -> None:
        """Send ``batch`` in one round trip, in order; hand each result to its member."""
        try:
            await self._send(batch)
        finally:
            for command in batch:
                command.room.queued -= 1
                self._free_if_empty(command.room)

    async def _send(self, batch: list[Command]) -> None:
        # Subscribe before a join is recorded, so no event after it can slip by unseen.
        channels = {RoomKeys.of(c.room.name).channel for c in batch if c.kind == "join"}
        unreachable: Exception | None = None
        try:
            await self._link.subscriber.subscribe(channels)
        except FAILURES as exc:
            unreachable = exc
        sent: list[tuple[Command, Call]] = []
        for command in batch:
            if command.kind == "join" and unreachable:
                continue
            call = to_call(command, self._link.process, self.history_size, self._sent_limit)
            if call is not None:
                sent.append((command, call))
        try:
            results = await self._scripts.batch([call for _, call in sent])
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

    def on_beat(self, lost: bool) -> None:
        """After each heartbeat: register our members again if Redis lost them; retry leaves."""
        if lost or self._resync:
            self._resync = False
            for room in self._rooms.values():
                for member in room.joined():
                    self._submit(Command("rejoin", room, member), force=True)
        retry, self._retry = self._retry, []
        for command in retry:
            self._submit(command, force=True)
