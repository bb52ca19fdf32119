"""A chat room's log: the ids it hands out and the history it keeps, behind a small interface.

``RoomLog`` is the seam between a room and where its events are stored. ``MemoryLog`` keeps them
in this process: consecutive ids and a bounded deque, enough for one server. Rooms shared by
several processes need ids and history that every process sees (lesson 07 puts them in Redis):
that is another ``RoomLog``, and ``ChatRoom`` does not change.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol, TypeVar

from course_server.realtime.messages import RoomEvent

E = TypeVar("E", bound=RoomEvent)


class Replay(NamedTuple):
    """What a room still holds after some id: is that everything, the oldest held, the events."""

    complete: bool
    oldest_id: int | None
    events: list[RoomEvent]


class RoomLog(Protocol):
    """Where a room's ids and history live: what ``ChatRoom`` needs, and all it needs."""

    last_id: int  # the newest id handed out (one less than the first id, before any)

    def append(self, build: Callable[[int], E]) -> E:
        """Assign the next id, build the event with it, keep it; return it."""
        ...

    def recent(self) -> list[RoomEvent]:
        """Every event still held, oldest first."""
        ...

    def since(self, last_id: int) -> Replay:
        """The events after ``last_id`` still held, and whether that is all of them."""
        ...


class MemoryLog:
    """Consecutive ids from ``first_id`` and the last ``history_size`` events, in memory."""

    def __init__(self, history_size: int, first_id: int = 1) -> None:
        self._history: deque[RoomEvent] = deque(maxlen=history_size)
        self._ids = itertools.count(first_id)
        self.first_id = first_id
        self.last_id = first_id - 1

    def append(self, build: Callable[[int], E]) -> E:
        event = build(next(self._ids))
        self._history.append(event)
        self.last_id = event.id
        return event

    def recent(self) -> list[RoomEvent]:
        return list(self._history)

    def since(self, last_id: int) -> Replay:
        held = len(self._history)
        oldest = self._history[0].id if held else None
        # An id from before this room existed (a room of the same name, since freed) or beyond
        # its newest (a server restart): the client's place is unknown, so give it all we hold.
        if not self.first_id - 1 <= last_id <= self.last_id:
            return Replay(False, oldest, list(self._history))
        # Ids are consecutive, so the gap is complete when no event after last_id was evicted.
        complete = last_id >= self.last_id - held
        skip = max(0, held - (self.last_id - last_id))
        return Replay(complete, oldest, list(itertools.islice(self._history, skip, None)))
