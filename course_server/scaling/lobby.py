"""Lesson 07: lesson 05's lobby shared by every server process that uses the same Redis.

``RedisLobby`` has the methods of ``lobby.RoomManager`` that the lobby endpoint calls, and like
them they never await: each changes this process's seats and queues a command; one task sends
the commands to Redis in order (``redis_lobby_scripts``), and pub/sub brings every room's events
back to each process that has members there, which hands them to its members. So every member,
on every process, sees one room's events in the same order, the order Redis ran them in.

A newcomer is "seated" when its own join event arrives (or its join's reply, whichever is
first): what the room said before that is not for it, as in one process. A member's own message
comes back to it through Redis like everyone else's; an error about its next frame waits for it
(``shared_room.InOrder``). It rides on the process's ``RedisLink``: its connections, the chat's
heartbeat (a killed process's seats are reaped, see the scripts) and its reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from typing import Any

from fastapi import HTTPException

from course_server.lessons.lobby import JOINED, LEFT, Left, Message, Presence
from course_server.realtime.fanout import Peer, framed
from course_server.realtime.messages import ErrorCode, error
from course_server.scaling import lobby_scripts as scripts
from course_server.scaling.link import FAILURES, Call, RedisLink, Scripts
from course_server.scaling.scripts import PROCS
from course_server.scaling.shared_room import InOrder
from course_server.scaling.worker import Worker

log = logging.getLogger("course_server.redis")

SCRIPTS = ("JOIN", "LEAVE", "SWEEP", "SAY", "COUNTS")


class Seat(InOrder):
    """One local connection of the lobby; ``id`` is ``process|n``, the same in every room."""

    __slots__ = ("id", "name", "room", "seated")

    def __init__(self, seat_id: str, peer: Peer) -> None:
        super().__init__(peer)
        self.id = seat_id
        self.room: str | None = None
        self.name: str | None = None
        self.seated = False  # its join has been run: the room's events are for it now


class RedisLobby:
    """Every lobby room this process has members in (``app.state.lobby`` with a Redis URL)."""

    prefix = scripts.LOBBY

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._numbers = itertools.count(1)
        self._seats: dict[Peer, Seat] = {}
        self._by_id: dict[str, Seat] = {}
        self.rooms: dict[str, dict[Seat, None]] = {}  # room → its local seats, in join order
        self._worker = Worker("lobby commands", self._run, tidy=self._tidy)
        self._subscribed: set[str] = set()  # rooms whose channel we asked for
        self._dirty: set[str] = set()  # rooms where a leave of ours failed: sweep them
        self._sweep = False
        self._empty = asyncio.Event()
        self._empty.set()
        self._scripts: Scripts  # made by ``start``, on the link's client of this run
        link.listen(self)

    async def start(self) -> None:
        """Load the scripts and start the worker (the link is up)."""
        self._scripts = Scripts(self._link.client, scripts, SCRIPTS)
        await self._scripts.load()
        self._worker.start()

    async def aclose(self) -> None:
        """Send the leaves still queued (for up to 2 s), then stop."""
        await self._worker.aclose()

    # What the lobby endpoint calls: none of these awaits ----------------------------------------

    def join(self, peer: Peer, room: str, name: str | None = None) -> None:
        """Move ``peer`` to ``room`` (leaving its old one), or give it a new name there."""
        seat = self._seats.get(peer)
        if seat is None:
            seat = self._seats[peer] = Seat(f"{self._link.process}|{next(self._numbers)}", peer)
            self._by_id[seat.id] = seat
        if seat.room != room:
            self.leave(peer)
            seat.room, seat.seated = room, False
            self.rooms.setdefault(room, {})[seat] = None
            self._empty.clear()
        seat.name = name
        self._submit(Command("join", seat, room))

    def leave(self, peer: Peer) -> str | None:
        """Take ``peer`` out of its room, if any; return that room's name."""
        seat = self._seats.get(peer)
        if seat is None or seat.room is None:
            return None
        room, seat.room = seat.room, None
        self._unseat(seat, room)
        peer.send(Left(room=room))
        self._submit(Command("leave", seat, room))
        return room

    def say(self, peer: Peer, content: str) -> bool:
        """Send ``content`` to everyone in ``peer``'s room, itself included; False if no room."""
        seat = self._seats.get(peer)
        if seat is None or seat.room is None:
            return False
        seat.posted += 1
        self._submit(Command("say", seat, seat.room, json.dumps({"say": content, "from": seat.id})))
        return True

    def reply(self, peer: Peer, frame: object) -> None:
        """A frame for ``peer`` alone, after the messages it sent before (``InOrder``)."""
        seat = self._seats.get(peer)
        if seat is None:
            peer.send(frame)
        else:
            seat.reply(frame)

    def forget(self, peer: Peer) -> None:
        """The connection ended: leave its room and drop its seat."""
        self.leave(peer)
        seat = self._seats.pop(peer, None)
        if seat is not None:
            self._by_id.pop(seat.id, None)

    async def fetch_counts(self) -> dict[str, int]:
        """Members per room, on every process, by room name."""
        try:
            flat = await self._scripts.call("COUNTS", [scripts.ROOMS, PROCS], [self.prefix])
        except FAILURES as exc:
            raise HTTPException(503, "the lobby cannot reach Redis") from exc
        return dict(sorted(zip(flat[::2], flat[1::2], strict=True)))

    def stats(self) -> dict[str, int]:
        """This process's rooms and seated members: what its memory grows with."""
        return {"rooms": len(self.rooms), "members": sum(map(len, self.rooms.values()))}

    async def wait_empty(self) -> None:
        """Return once this process has no member in any room, and Redis was told."""
        await self._empty.wait()
        await self._worker.wait_idle()

    # Events from Redis ---------------------------------------------------------------------------

    async def on_message(self, channel: str, data: str) -> None:
        room = channel.removeprefix(self.prefix)
        seats = self.rooms.get(room, {})
        event: dict[str, Any] = json.loads(data)
        if "say" in event:
            message = framed(Message(content=event["say"]))  # encoded and framed once for all
            for seat in seats:
                if seat.seated:
                    seat.peer.send(message)
            sender = self._by_id.get(event["from"])
            if sender is not None:
                sender.settle()  # wherever it is now: its message is out
            return
        joined = event.get("joined")
        if joined in self._by_id and self._by_id[joined] in seats:
            self._by_id[joined].seated = True
        left = [LEFT] * len(event.get("left") or ())  # cjson writes an empty list as {}
        presence = Presence(room=room, count=event["count"], names=event.get("names") or [])
        for seat in seats:
            if seat.seated:
                greet = [JOINED] if joined is not None and joined != seat.id else []
                for frame in [*left, *greet, presence]:
                    seat.peer.send(frame)

    async def on_subscribed(self, channel: str) -> None:
        pass  # nothing to catch up: the lobby keeps no history

    def on_reconnected(self) -> None:
        """Pub/sub was down: our messages published meanwhile never come back; stop waiting."""
        for seat in self._seats.values():
            seat.settle_all()

    def on_beat(self, lost: bool) -> None:
        """After each heartbeat: reap dead processes' seats, and register ours again if lost."""
        self._sweep = True
        self._worker.poke()

    # The worker: queued commands → Redis ----------------------------------------------------------

    def _submit(self, command: Command) -> None:
        self._worker.submit(command)

    def _unseat(self, seat: Seat, room: str) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.pop(seat, None)
            if not members:
                del self.rooms[room]
                if not self.rooms:
                    self._empty.set()

    async def _tidy(self) -> None:
        """Once the queue is sent: the sweep a heartbeat asked for, then unused channels."""
        if self._sweep:
            self._sweep = False
            await self._sweep_rooms()
        await self._unsubscribe_unused()

    async def _run(self, batch: list[Command]) -> None:
        """Send ``batch`` in one round trip, in order, subscribing first to the rooms joined."""
        joined = {c.room for c in batch if c.kind == "join"}
        results: list[Any]
        try:
            await self._link.subscriber.subscribe(map(scripts.channel, joined))
            self._subscribed |= joined
            results = await self._scripts.run([command.call() for command in batch])
        except FAILURES as exc:
            results = [exc] * len(batch)
        for command, result in zip(batch, results, strict=True):
            self._finish(command, result)

    def _finish(self, command: Command, result: Any) -> None:
        """Hand a command's result to its seat: seated now, or an error telling it to try again."""
        seat, room = command.seat, command.room
        failed = isinstance(result, Exception)
        if command.kind == "say":
            if failed:
                seat.settle(error(ErrorCode.UNAVAILABLE, "Redis did not take this: send it again"))
        elif command.kind == "leave":
            if failed:
                self._dirty.add(room)  # the next sweep takes our stale seat out
        elif seat.room == room:  # a join, and it is still there
            if not failed:
                seat.seated = True
                return
            seat.room = None
            self._unseat(seat, room)
            self._dirty.add(room)  # in case it ran after all
            seat.reply(error(ErrorCode.UNAVAILABLE, "the lobby cannot reach Redis: join again"))

    async def _sweep_rooms(self) -> None:
        """Reap dead processes' seats, register ours again where Redis lost them."""
        rooms = sorted(self.rooms.keys() | self._dirty)
        calls: list[Call] = []
        for room in rooms:
            args = [room, scripts.channel(room), self._link.process]
            for seat in self.rooms.get(room, {}):
                args += [seat.id, seat.name or ""]
            calls.append(("SWEEP", scripts.keys(room), args))
        try:
            results = await self._scripts.run(calls)
        except FAILURES:
            return  # the next heartbeat sweeps again
        for room, result in zip(rooms, results, strict=True):
            if not isinstance(result, Exception):
                self._dirty.discard(room)

    async def _unsubscribe_unused(self) -> None:
        for room in self._subscribed - self.rooms.keys():
            self._subscribed.discard(room)
            await self._link.subscriber.unsubscribe(scripts.channel(room))


class Command:
    """Something a local seat did that Redis has to know, in the order it happened."""

    __slots__ = ("kind", "payload", "room", "seat")

    def __init__(self, kind: str, seat: Seat, room: str, payload: str = "") -> None:
        self.kind, self.seat, self.room, self.payload = kind, seat, room, payload

    def call(self) -> Call:
        """The script call that tells Redis (``redis_lobby_scripts``)."""
        if self.kind == "say":
            return "SAY", [], [scripts.channel(self.room), self.payload]
        args = [self.room, scripts.channel(self.room), self.seat.id]
        if self.kind == "join":
            args.append(self.seat.name or "")
        return self.kind.upper(), scripts.keys(self.room), args
