"""Lesson 08 with lesson 07's Redis: one notifications stream for every server process.

``publish`` runs one Lua script, so Redis gives each notification its id (1, 2, 3, … for every
process) and keeps it in a stream whose entry ids are ``0-N`` for notification N, trimmed to the
feed's history size. Each process runs one task that tails that stream (``XREAD BLOCK``) and
appends every entry, in id order, to the process's own ``Feed``; the SSE endpoint reads that feed
exactly as it does in-process, so a subscriber costs Redis nothing. At start-up the feed is filled
with what the stream holds, and it keeps as many notifications as the stream does: a
``Last-Event-ID`` gets the same answer from any process.

It reads and publishes through the process's ``RedisLink``. No pub/sub: the stream is the
channel. A reader cut off from Redis reconnects and reads on from
the last id its feed has, so nothing the stream still holds is lost. While Redis is unreachable,
``publish`` answers 503 (try again): a notification is never dropped silently.

Keys: ``course:notifications:seq`` (the last id handed out) and ``course:notifications:log``
(the stream, fields ``t``: publication time, ``d``: the data as JSON).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import HTTPException
from pydantic import JsonValue
from redis.commands.core import AsyncScript

from course_server.lessons.feed import Event, Feed
from course_server.realtime.backoff import Backoff
from course_server.scaling.link import FAILURES, RedisLink, stop_tasks
from course_server.scaling.scripts import PREFIX

log = logging.getLogger("course_server.redis")

SEQ = PREFIX + "notifications:seq"
LOG = PREFIX + "notifications:log"
BLOCK_MS = 1000  # each XREAD waits this long for news; below redis_link's command timeout

# KEYS seq log   ARGV published_at data history floor   → the notification's id
# Never below `floor`, the highest id the calling process knows of: so ids keep increasing even
# after Redis lost its data (it runs without persistence in the course).
PUBLISH = """
local id = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[4])) + 1
redis.call('SET', KEYS[1], id)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. id, 't', ARGV[1], 'd', ARGV[2])
return id
"""


def to_event(entry_id: str, fields: dict[str, str]) -> Event:
    """The notification a stream entry holds (entry ``0-N`` is notification N)."""
    return Event(
        id=int(entry_id.partition("-")[2]),
        published_at=float(fields["t"]),
        data=json.loads(fields["d"]),
    )


class RedisFeed:
    """Publishes notifications through Redis and fills ``feed`` with everyone's, in id order."""

    def __init__(self, link: RedisLink, feed: Feed) -> None:
        self.link = link
        self.feed = feed
        self.connected = asyncio.Event()  # set while the reader gets answers from Redis
        self._given = 0  # the highest id Redis gave a publish of this process
        self._script: AsyncScript | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        """The name of this process's Redis connections (``CLIENT LIST``)."""
        return self.link.name

    async def start(self) -> None:
        """Load what the stream holds and start the reader (the link is up); raise if cut off."""
        self.connected = asyncio.Event()  # a new one per start: a restart runs on a new loop
        self._script = self.link.client.register_script(PUBLISH)
        try:
            await self._read(block=None)
        except FAILURES as exc:
            raise RuntimeError(f"cannot reach Redis at {self.link.url}: {exc}") from exc
        self.connected.set()
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._tail(), name="notifications reader")

    async def aclose(self) -> None:
        """Stop the reader (the feed and its history stay, for a restart)."""
        if self._reader is not None:
            await stop_tasks([self._reader])
            self._reader = None
        self.connected.clear()

    async def __aenter__(self) -> RedisFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def publish(self, data: JsonValue) -> Event:
        """Give ``data`` the next id in Redis and keep it there; every process's reader gets it.

        Raises HTTP 503 if Redis cannot be reached: then the script did not run, unless Redis
        went away between running it and answering (the rare case where publishing again makes a
        duplicate). The reply may come before this process's own subscribers have the
        notification: they get it from the reader, like everyone else's.
        """
        assert self._script is not None, "start() first"
        published_at = time.time()
        floor = max(self.feed.last_id, self._given)
        args: list[str | int] = [repr(published_at), json.dumps(data), self.feed.history_size]
        args.append(floor)
        try:
            event_id = int(await self._script(keys=[SEQ, LOG], args=args))
        except FAILURES as exc:
            raise HTTPException(
                503,
                "notifications cannot reach Redis right now: publish again in a moment",
                headers={"Retry-After": "1"},
            ) from exc
        self._given = max(self._given, event_id)
        return Event(id=event_id, published_at=published_at, data=data)

    async def _tail(self) -> None:
        """Append each new stream entry to the feed, until cancelled; reconnect when cut off."""
        backoff = Backoff()
        while True:
            try:
                await self._read(block=BLOCK_MS)
            except FAILURES as exc:
                if self.connected.is_set():
                    log.warning("notifications: lost Redis (%s); reconnecting", exc)
                    await self.link.drop_idle_connections()
                self.connected.clear()
            except Exception:  # a bug must not silently stop every subscriber of this process
                log.exception("notifications: reading the stream failed; retrying")
            else:
                backoff.reset()
                self.connected.set()
                continue
            await asyncio.sleep(backoff.next_delay())  # the backoff's pace, not a readiness wait

    async def _read(self, block: int | None) -> None:
        """Append the entries after the feed's last id (waiting up to ``block`` ms for one)."""
        streams: dict[str | bytes | memoryview, str | int | bytes | memoryview]
        streams = {LOG: f"0-{self.feed.last_id}"}
        read: list[tuple[str, list[tuple[str, dict[str, str]]]]]
        # The client decodes every reply (``link.connect``): str, never the bytes it is typed with.
        read = await self.link.client.xread(streams, block=block)  # type: ignore[assignment]
        for _, entries in read:
            for entry_id, fields in entries:
                self.feed.append(to_event(entry_id, fields))
