"""Lesson 07: events in, from Redis to this process's rooms, with no gap and no duplicate.

Pub/sub brings each event as it happens, but only while the connection is up: a subscriber
that was away misses what was published meanwhile, and nothing tells it. Ids make the loss
visible (they are consecutive per room, so event 12 after event 9 means two are missing) and
the room's stream makes it recoverable: ``catch_up`` reads what came after the last event
delivered here. It runs on such a jump, and after every (re)subscription of a room's channel.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from pydantic import ValidationError

from course_server.scaling.scripts import RoomKeys
from course_server.scaling.shared_room import SharedRoom, parse_event

log = logging.getLogger("course_server.redis")


class Intake:
    """Hands the events of each subscribed channel to its room (``rooms``: channel → room)."""

    def __init__(self, client: redis.Redis, rooms: dict[str, SharedRoom]) -> None:
        self._client = client
        self._rooms = rooms

    async def on_message(self, channel: str, data: str) -> None:
        room = self._rooms.get(channel)
        if room is None:
            return
        try:
            event = parse_event(data)
        except ValidationError:
            log.exception("not an event, on %s: %.200s", channel, data)
            return
        if room.last_seen is not None and event.id > room.last_seen + 1:
            await self.catch_up(room)  # a jump in ids: pub/sub lost some, the stream has them
        room.deliver(event)

    async def on_subscribed(self, channel: str) -> None:
        room = self._rooms.get(channel)
        if room is not None:
            await self.catch_up(room)  # what was published while we were not subscribed

    async def catch_up(self, room: SharedRoom) -> None:
        """Deliver the events after ``room.last_seen`` from the stream, or say some are gone."""
        after = room.last_seen
        if after is None:
            return  # nothing delivered here yet: a newcomer's join reply brings its history
        keys = RoomKeys.of(room.name)
        pipe = self._client.pipeline(transaction=False)
        pipe.get(keys.seq)
        pipe.xrange(keys.log, f"0-{after + 1}", "+")
        last, entries = await pipe.execute()
        events = [parse_event(fields["e"]) for _, fields in entries]
        first = events[0].id if events else int(last or 0) + 1
        if first > after + 1:
            room.missed()  # evicted before we could read them: its members resume instead
        for event in events:
            room.deliver(event)
