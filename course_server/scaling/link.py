"""Lesson 07: one process's connection to Redis, and what keeps it going.

``RedisLink`` owns it: one client and one pub/sub reader per process, shared by every structure
the backend keeps in Redis (``backend``), and their health (``/readyz``). Its pieces:
``connect()`` makes a client that never retries on its own (a retried script could run twice;
the caller decides what a failure means), ``Scripts`` runs Lua scripts (``scaling.scripts``),
several per round trip, and ``Subscriber`` holds the pub/sub connection: it reconnects with
backoff when Redis goes away and re-subscribes, and says when each channel is really subscribed
(``SUBSCRIBE`` only asks).

Imported only when a Redis URL is configured: the in-process default never loads ``redis``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
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
PROBE_TIMEOUT = 1.0  # seconds, for /readyz: a balancer's probe usually gives up after 1–5 s


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


Call = tuple[str, Sequence[str], Sequence[Any]]
"""One script call: the script's name in ``redis_scripts``, its KEYS, its ARGV."""


class Scripts:
    """Run ``redis_scripts``' scripts by SHA (EVALSHA), loading them again after Redis restarts."""

    NAMES = ("JOIN", "LEAVE", "POST", "ROSTER", "HEARTBEAT", "FORGET", "RETIRE", "BATCH")

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

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Run ``calls`` (JOIN, LEAVE, POST) as ONE script call, ``BATCH``: results as ``run``'s.

        One command to pack and one reply to parse for the whole batch, and one pub/sub message
        per room for all its events. If the batch itself fails, every call gets that exception.
        """
        if not calls:
            return []
        keys: list[str] = []
        args: list[Any] = [len(calls)]
        first: dict[tuple[str, ...], int] = {}  # calls on one room share its KEYS: sent once
        for name, call_keys, call_args in calls:
            where = first.setdefault(tuple(call_keys), len(keys) + 1)
            if where == len(keys) + 1:
                keys += call_keys
            args += [name, where, len(call_keys), len(call_args), *call_args]
        [result] = await self.run([("BATCH", keys, args)])
        if isinstance(result, Exception):
            return [result] * len(calls)
        results: list[Any] = result
        return results

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


class Listener(Protocol):
    """A structure whose channels start with ``prefix`` (the chat's rooms, the lobby, the relay)."""

    prefix: str

    async def on_message(self, channel: str, data: str) -> None: ...

    async def on_subscribed(self, channel: str) -> None: ...

    def on_reconnected(self) -> None: ...

    def on_beat(self, lost: bool) -> None: ...


class RedisLink:
    """This process's connection to Redis: one client, one pub/sub reader, their health.

    Every shared structure (rooms, lobby, relay, notifications, login counts, sign-outs) sends
    through ``client`` and ``listen``s on ``subscriber``, which routes each channel to the
    listener whose ``prefix`` it starts with. ``beat(lost)`` passes the chat's heartbeat
    (``presence``) on to every listener. The client and the reader are made by ``start``, on the
    running loop: a server restarted with the same app runs on a new one.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.name = f"course:{self.process}"  # CLIENT LIST shows it on every connection
        self._listeners: list[Listener] = []
        self._client: redis.Redis | None = None
        self._subscriber: Subscriber | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def client(self) -> redis.Redis:
        assert self._client is not None, "start() first"
        return self._client

    @property
    def subscriber(self) -> Subscriber:
        assert self._subscriber is not None, "start() first"
        return self._subscriber

    def listen(self, listener: Listener) -> None:
        """Route ``listener.prefix``'s channels to ``listener``; tell it of beats, reconnects."""
        self._listeners.append(listener)

    def beat(self, lost: bool) -> None:
        """After each heartbeat (``lost``: Redis had forgotten this process)."""
        for listener in self._listeners:
            listener.on_beat(lost)

    async def start(self) -> None:
        """Connect and subscribe; raise ``RuntimeError`` if Redis cannot be reached."""
        client = self._client = connect(self.url, self.name)
        try:
            await client.ping()
        except FAILURES as exc:
            await client.aclose()
            raise RuntimeError(f"cannot reach Redis at {self.url}: {exc}") from exc
        subscriber = self._subscriber = Subscriber(
            client,
            f"{redis_scripts.PREFIX}proc:{self.process}",
            on_message=self._on_message,
            on_subscribed=self._on_subscribed,
            on_reconnected=self._on_reconnected,
        )
        self._reader = asyncio.get_running_loop().create_task(subscriber.run())
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
                await subscriber.connected.wait()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop reading and disconnect."""
        if self._reader is not None:
            await stop_tasks([self._reader])
            self._reader = None
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> RedisLink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def drop_idle_connections(self) -> None:
        """Close the pooled connections: they died with Redis, and a command must not get one.

        redis-py does not always notice a closed connection before it sends on it, so the first
        command after Redis came back would fail for nothing.
        """
        with contextlib.suppress(*FAILURES):
            await self.client.connection_pool.disconnect(inuse_connections=False)

    async def problem(self) -> str | None:
        """Why this process cannot serve through Redis now, or ``None`` (for ``/readyz``)."""
        if self._client is None or self._subscriber is None:
            return "not connected to Redis yet"
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._client.ping()
        except FAILURES as exc:
            return f"Redis is unreachable ({type(exc).__name__})"
        if not self._subscriber.connected.is_set():
            return "the Redis pub/sub connection is reconnecting"
        return None

    def _listener(self, channel: str) -> Listener | None:
        for listener in self._listeners:
            if channel.startswith(listener.prefix):
                return listener
        return None

    async def _on_message(self, channel: str, data: str) -> None:
        listener = self._listener(channel)
        if listener is not None:
            await listener.on_message(channel, data)

    async def _on_subscribed(self, channel: str) -> None:
        listener = self._listener(channel)
        if listener is not None:
            await listener.on_subscribed(channel)

    def _on_reconnected(self) -> None:
        for listener in self._listeners:
            listener.on_reconnected()
