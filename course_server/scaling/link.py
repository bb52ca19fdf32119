"""Lesson 07: one process's connections to Redis, and what keeps them going.

Three pieces, each independent of the chat: ``connect()`` makes a client that never retries on
its own (a retried script could run twice; the caller decides what a failure means),
``Scripts`` runs the Lua scripts of ``redis_scripts``, several per round trip, and
``Subscriber`` holds the pub/sub connection: it reconnects with backoff when Redis goes away and
re-subscribes, and says when each channel is really subscribed (``SUBSCRIBE`` only asks).

Imported only when a Redis URL is configured: the in-process default never loads ``redis``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence, Sized
from types import ModuleType
from typing import Any, Protocol

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from course_server.realtime.backoff import Backoff
from course_server.scaling import scripts as redis_scripts

log = logging.getLogger("course_server.redis")

FAILURES = (RedisError, OSError, TimeoutError)
"""What a lost or unreachable Redis raises (redis-py wraps most, not all, socket errors)."""

SUBSCRIBE_TIMEOUT = 2.0
RECONNECT_GRACE = 1.0  # how long a join waits for a pub/sub connection that is reconnecting
COMMAND_TIMEOUT = 2.0


def connect(url: str, name: str) -> redis.Redis:
    """A client for ``url`` that gives up at once: no retries, a bounded wait per command."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        client_name=name,  # CLIENT LIST shows which process each connection belongs to
        socket_connect_timeout=COMMAND_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they are done, cancelling again if one carries on.

    On Python 3.11, ``asyncio.wait_for`` (which redis-py uses for socket timeouts) swallows a
    cancellation that arrives as the awaited operation completes: one ``cancel()`` may be lost.
    """
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.1)


async def flush(idle: asyncio.Event, queue: Sized, what: str, timeout: float = 2.0) -> None:
    """Wait up to ``timeout`` for a worker to send its ``queue`` (``idle`` set); log what was not.

    A shutdown's last step before ``stop_tasks``: leaves and messages still queued get a chance.
    """
    try:
        async with asyncio.timeout(timeout):
            await idle.wait()
    except TimeoutError:
        log.warning("%d %s were not sent to Redis", len(queue), what)


Call = tuple[str, Sequence[str], Sequence[Any]]
"""One script call: the script's name in ``redis_scripts``, its KEYS, its ARGV."""


class Scripts:
    """Run ``redis_scripts``' scripts by SHA (EVALSHA), loading them again after Redis restarts."""

    NAMES = ("JOIN", "LEAVE", "POST", "ROSTER", "HEARTBEAT", "FORGET", "RETIRE")

    def __init__(
        self, client: redis.Redis, source: ModuleType = redis_scripts, names: Sequence[str] = NAMES
    ) -> None:
        """The scripts ``names`` of module ``source`` (by default the chat's)."""
        self._client = client
        self._text = {name: getattr(source, name) for name in names}
        self._sha = {
            name: hashlib.sha1(text.encode()).hexdigest() for name, text in self._text.items()
        }

    async def load(self) -> None:
        for text in self._text.values():
            await self._client.script_load(text)

    async def run(self, calls: Sequence[Call]) -> list[Any]:
        """Run ``calls`` in one round trip, in order; each result is a value or an exception.

        Raises if the connection fails: then any of them may or may not have run.
        """
        results = await self._pipeline(calls)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:  # Redis restarted and forgot the scripts (all of them: none of those ran)
            await self.load()
            again = await self._pipeline([calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def call(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script; raise what it raised."""
        [result] = await self.run([(name, keys, args)])
        if isinstance(result, Exception):
            raise result
        return result

    async def _pipeline(self, calls: Iterable[Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for name, keys, args in calls:
            pipe.evalsha(self._sha[name], len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)


class Subscriber:
    """The pub/sub connection: channels wanted, confirmed, and a reader that reconnects.

    ``on_message(channel, data)`` gets every message, and ``on_subscribed(channel)`` every
    confirmation (the first, and each one after a reconnect), in the order Redis sent them:
    the reader awaits each call before it reads on, so a call can fill a gap first.
    ``on_reconnected()`` is called when a lost connection is back.
    """

    def __init__(
        self,
        client: redis.Redis,
        control: str,
        on_message: Callable[[str, str], Awaitable[None]],
        on_subscribed: Callable[[str], Awaitable[None]],
        on_reconnected: Callable[[], None],
    ) -> None:
        self._client = client
        self._control = control  # always subscribed, so the connection exists with no room
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._on_reconnected = on_reconnected
        self._wanted: set[str] = set()
        self._confirmed: set[str] = set()
        # Each resolves True when its channel is confirmed, False when the connection is lost.
        self._waiters: dict[str, list[asyncio.Future[bool]]] = {}
        self._pubsub: PubSub | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe and return once Redis confirms each channel (or raise ``ConnectionError``)."""
        missing = [c for c in channels if c not in self._confirmed]
        self._wanted.update(missing)
        if not missing:
            return
        if self._pubsub is None:  # reconnecting: give it a moment before giving up
            try:
                async with asyncio.timeout(RECONNECT_GRACE):
                    await self.connected.wait()
            except TimeoutError:
                raise ConnectionError("not connected to Redis") from None
        pubsub = self._pubsub
        assert pubsub is not None
        loop = asyncio.get_running_loop()
        waiters = []
        for channel in missing:
            waiters.append(loop.create_future())
            self._waiters.setdefault(channel, []).append(waiters[-1])
        await pubsub.subscribe(*missing)
        done, pending = await asyncio.wait(waiters, timeout=SUBSCRIBE_TIMEOUT)
        for waiter in pending:
            waiter.cancel()
        if pending or not all(waiter.result() for waiter in done):
            raise ConnectionError("Redis did not confirm the subscription")

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        self._confirmed.discard(channel)
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(channel)
            except FAILURES:
                pass  # the next connection does not subscribe to it anyway

    async def run(self) -> None:
        """Read until cancelled; on a lost connection, reconnect with backoff and re-subscribe."""
        backoff = Backoff()
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self._control, *self._wanted)
                self._pubsub = pubsub
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        await self._on_message(message["channel"], message["data"])
                    elif message["type"] == "subscribe":
                        await self._confirm(message["channel"], backoff)
            except FAILURES as exc:
                log.warning("pub/sub connection lost (%s); reconnecting", exc)
            except Exception:  # a bug in a handler: start over rather than stop listening
                log.exception("pub/sub reader failed; reconnecting")
            finally:
                self._drop()
                await pubsub.aclose()
            await asyncio.sleep(backoff.next_delay())  # the backoff's pace, not a readiness wait

    async def _confirm(self, channel: str, backoff: Backoff) -> None:
        if channel == self._control:
            self.connected.set()
            if backoff.failures:
                self.reconnects += 1
                self._on_reconnected()
            backoff.reset()
            return
        self._confirmed.add(channel)
        for waiter in self._waiters.pop(channel, []):
            if not waiter.done():
                waiter.set_result(True)
        await self._on_subscribed(channel)

    def _drop(self) -> None:
        self._pubsub = None
        self.connected.clear()
        self._confirmed.clear()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(False)
        self._waiters.clear()


class Guest(Protocol):
    """What ``RedisRooms.host`` needs of another structure sharing its Redis connections."""

    prefix: str  # its channels' common prefix

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def on_message(self, channel: str, data: str) -> None: ...

    def on_reconnected(self) -> None: ...

    def on_beat(self, lost: bool) -> None: ...
