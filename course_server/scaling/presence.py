"""Lesson 07: which processes are alive, so a killed one's users leave within a bounded time.

Every process refreshes its heartbeat in ``course:procs`` (a sorted set: process → expiry time,
in Redis' own clock, so the processes' clocks do not matter) every ``interval`` seconds. One that
stops, killed or cut off, expires after ``ttl``: from then on its users are not listed and their
names are free again (the scripts check), and the next heartbeat of any other process reaps them:
each gets its leave event, as if it had disconnected.

A process that finds itself missing from ``course:procs`` (it stalled and was reaped, or Redis
restarted empty) is told so through ``on_beat(True)``: its members are still connected, so it
registers them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as redis

from course_server.scaling.commands import IDLE_SECONDS, leave_body
from course_server.scaling.link import FAILURES, Call, Scripts
from course_server.scaling.scripts import PROCS, RoomKeys, proc_rooms, room_keys

log = logging.getLogger("course_server.redis")


class Presence:
    """This process's heartbeat task, and the reaper of processes whose heartbeat stopped."""

    def __init__(
        self,
        client: redis.Redis,
        scripts: Scripts,
        process: str,
        *,
        interval: float,
        ttl: float,
        history_size: int,
        on_beat: Callable[[bool], None],
    ) -> None:
        self._client, self._scripts, self.process = client, scripts, process
        self.interval, self.ttl, self.history_size = interval, ttl, history_size
        self._on_beat = on_beat
        self._registered = False
        self._poke = asyncio.Event()

    def poke(self) -> None:
        """Beat now rather than at the next interval (e.g. right after Redis came back)."""
        self._poke.set()

    async def run(self) -> None:
        """Beat every ``interval`` seconds (or when poked) until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), self.interval)
            except TimeoutError:
                pass  # the heartbeat's own pace
            self._poke.clear()
            try:
                await self.beat()
            except FAILURES as exc:
                log.info("heartbeat failed: %s", exc)
            except Exception:  # a bug must not stop the heartbeat: we would be reaped
                log.exception("heartbeat failed")

    async def beat(self) -> None:
        """Refresh our expiry; then reap every process whose expiry has passed."""
        added, *expired = await self._scripts.call(
            "HEARTBEAT", [PROCS], [self.process, int(self.ttl * 1000)]
        )
        lost = bool(added) and self._registered
        self._registered = True
        self._on_beat(lost)
        for process in expired:
            await self.reap(process)

    async def reap(self, process: str) -> None:
        """Send the leave of each user ``process`` held, then forget the process."""
        rooms_key = proc_rooms(process)
        # The client decodes every reply (``link.connect``): str, never the bytes typed below.
        names: list[str] = await self._client.hkeys(rooms_key)  # type: ignore[assignment]
        for name in names:
            keys = RoomKeys.of(name)
            owners: dict[str, str] = await self._client.hgetall(keys.owners)  # type: ignore[assignment]
            calls: list[Call] = []
            for username, owner in owners.items():
                if owner == process:
                    args = [name, username, process, leave_body(username), self.history_size]
                    args += [keys.channel, 0, IDLE_SECONDS, ""]
                    calls.append(("LEAVE", room_keys(keys, process), args))
            results = await self._scripts.run(calls) if calls else []
            if not any(isinstance(result, Exception) for result in results):
                # Also when nobody was left: a newcomer took a name over from the dead process.
                await self._client.hdel(rooms_key, name)
        await self._scripts.call("FORGET", [PROCS, rooms_key], [process])

    async def retire(self) -> None:
        """A clean exit: forgotten now if we hold nobody, else reaped by the others at once."""
        await self._scripts.call("RETIRE", [PROCS, proc_rooms(self.process)], [self.process])
