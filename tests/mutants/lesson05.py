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


@mutant("05.1", "leave() raises KeyError for a member in no room")
class StrictLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if member in self.room_of:  # join guards its own call; the endpoint's leave() does not
            super().join(member, room)
            return
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room

    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member)
        members = self.rooms[room]
        members.discard(member)
        if not members:
            del self.rooms[room]
        for other in members:
            other.send(LEFT)


@mutant("05.1", "a member leaving deletes the room, others and all")
class DemolishingLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is None:
            return
        members = self.rooms.pop(room)
        members.discard(member)
        for other in members:
            other.send(LEFT)


@mutant("05.1", "leave() keeps room_of: a member that left cannot come back")
class ClingyLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.get(member)
        if room is None or member not in self.rooms.get(room, set()):
            return
        members = self.rooms[room]
        members.discard(member)
        if not members:
            del self.rooms[room]
        for other in members:
            other.send(LEFT)


@mutant("05.1", "JOINED goes to the whole lobby, not the room")
class LoudLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        for members in self.rooms.values():
            for other in members:
                other.send(JOINED)
        self.rooms.setdefault(room, set()).add(member)
        self.room_of[member] = room


@mutant("05.1", "switching leaves the old room by hand and keeps it when it empties")
class HalfLeavingLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        old = self.room_of.get(member)
        if old == room:
            return
        if old is not None:
            self.rooms[old].discard(member)
            for other in self.rooms[old]:
                other.send(LEFT)
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room


@mutant("05.1", "the leaver hears LEFT too: told before it is taken out")
class EchoingLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is None:
            return
        members = self.rooms[room]
        for other in members:
            other.send(LEFT)
        members.discard(member)
        if not members:
            del self.rooms[room]


@mutant("05.1", "JOINED goes to one member of the room: next(iter(members))")
class OneToldLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        members = self.rooms.setdefault(room, set())
        if members:
            next(iter(members)).send(JOINED)
        members.add(member)
        self.room_of[member] = room


@mutant("05.1", "LEFT goes to one member left behind: next(iter(members))")
class OneToldOfLeavingLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is None:
            return
        members = self.rooms[room]
        members.discard(member)
        if not members:
            del self.rooms[room]
            return
        next(iter(members)).send(LEFT)


@mutant("05.1", "rooms[room] = {member}: joining replaces the room's members")
class ReplacingLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        for other in self.rooms.get(room, set()):
            other.send(JOINED)
        self.rooms[room] = {member}
        self.room_of[member] = room


@mutant("05.1", "switching takes the member out of the old room without telling it")
class SilentSwitchLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        old = self.room_of.pop(member, None)
        if old is not None:
            self.rooms[old].discard(member)
            if not self.rooms[old]:
                del self.rooms[old]
        members = self.rooms.setdefault(room, set())
        for other in members:
            other.send(JOINED)
        members.add(member)
        self.room_of[member] = room


@mutant("05.1", "deletes the room when one member is left: len(members) <= 1")
class OneLeftLobby(BaseLobby):
    def leave(self, member: Any) -> None:
        room = self.room_of.pop(member, None)
        if room is None:
            return
        members = self.rooms[room]
        members.discard(member)
        for other in members:
            other.send(LEFT)
        if len(members) <= 1:
            del self.rooms[room]


@mutant("05.1", "tells the room only when it has two members or more: len(members) > 1")
class CrowdOnlyLobby(BaseLobby):
    def join(self, member: Any, room: str) -> None:
        if self.room_of.get(member) == room:
            return
        self.leave(member)
        members = self.rooms.setdefault(room, set())
        if len(members) > 1:
            for other in members:
                other.send(JOINED)
        members.add(member)
        self.room_of[member] = room
