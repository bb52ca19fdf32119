"""Plausible wrong answers to lesson 05's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

from typing import Any

from mutants.registry import mutant

# --- 05.1 Lobby ------------------------------------------------------------------------------

JOINED = {"type": "system", "message": "A user joined the room"}
LEFT = {"type": "system", "message": "A user left the room"}


class BaseLobby:
    def __init__(self) -> None:
        self.rooms: dict[str, set[Any]] = {}
        self.room_of: dict[Any, str] = {}

    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room

    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is None:
            return
        members = self.rooms[room]
        members.discard(member)
        if not members:
            del self.rooms[room]
        for other in members:
            other.send(LEFT)

    def say(self, member: Any, content: str) -> None:
        room = self.room_of.get(member)
        for other in self.rooms.get(room, set()) if room is not None else set():
            other.send({"type": "message", "content": content})


@mutant("05.1", "switching joins the new room without leaving the old one")
class StickyLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room

    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        for members in self.rooms.values():
            members.discard(member)
        if room is not None and not self.rooms[room]:
            del self.rooms[room]


@mutant("05.1", "the joiner hears about itself")
class ChattyLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        self.rooms.setdefault(room, set()).add(member)
        self.room_of[member] = room
        for other in self.rooms[room]:
            other.send(JOINED)


@mutant("05.1", "empty rooms are kept: the seed's leak")
class LeakyLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is not None:
            self.rooms[room].discard(member)
            for other in self.rooms[room]:
                other.send(LEFT)


@mutant("05.1", "rejoining the same room leaves and joins again")
class RestlessLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        self.leave(member)
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room
