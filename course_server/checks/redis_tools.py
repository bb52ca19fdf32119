"""Redis for lesson 07's checks: a throwaway server, another process's publish, and clients.

Every check gets a ``redis-server`` of its own (``throwaway_redis``, about 25 ms to start), so no
two checks share a key. The layout is the exercises' (``keys``; the notebook's ``room_keys``
must match): a counter per room, a stream of its last ``HISTORY`` events (entry id ``0-N`` for
event N, field ``text``), and a channel on which each event goes out as ``{"id": N, "text": T}``.

Two clients make races deterministic, by playing the operating system: ``Paused`` stops after
its first command until the check lets it go on; ``Hooked`` runs the check's code right after
its first read of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from course_server.tools.redis_server import RedisServer

HISTORY = 20

RECORD = """
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, 'text', ARGV[1])
if ARGV[3] == '1' then
  redis.call('PUBLISH', KEYS[3], cjson.encode({id = id, text = ARGV[1]}))
end
return id
"""
"""The check's own publish: a script, so one step. ``ARGV[3]`` "0" keeps an event unpublished."""


def keys(room: str) -> tuple[str, str, str]:
    return f"room:{room}:seq", f"room:{room}:log", f"room:{room}"


def client(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True)


R = TypeVar("R", bound=Redis)


def client_of(kind: type[R], url: str) -> R:
    """A ``kind`` client of ``url``, replies decoded, as ``client`` is."""
    # from_url builds a ``cls``, but redis-py annotates it as returning plain Redis.
    return cast(R, kind.from_url(url, decode_responses=True))


async def record(redis: Redis, room: str, *texts: str, published: bool = True) -> list[int]:
    """Publish ``texts`` as another process would (``published=False``: as pub/sub lost them).

    Returns their ids.
    """
    flag = "1" if published else "0"
    return [await redis.eval(RECORD, 3, *keys(room), text, HISTORY, flag) for text in texts]


async def used_before(redis: Redis, room: str, last_id: int) -> None:
    """Make ``room`` one whose events went up to ``last_id`` long ago: all trimmed but the last.

    So a check's ids start anywhere, not at 1: code that counts from 1 (or from the stream's
    length) shows itself.
    """
    seq, log, _ = keys(room)
    await redis.set(seq, last_id)
    await redis.xadd(log, {"text": "long ago"}, id=f"0-{last_id}")


TRICKY_TEXTS = [
    'she said "hi"',
    "back\\slash \\n not a newline",
    "two\nlines",
    "tab\there",
    "naïve café ☕",
    "名前は？",
    '{"id": 999, "text": "forged"}',
    "it's",
    "]]--[[ end",
    "%s %d ..",
    "line\u2028separator",
    "  spaced  ",
]
"""Texts that break JSON or Lua built by hand: quotes, backslashes, newlines, non-ASCII."""

WORDS = ["hello", "how are you?", "bye", "lunch?", "on my way", "ok", "see you", "ready"]


def texts(rng: random.Random, count: int, tricky: bool = True) -> list[str]:
    """``count`` different texts, a new choice each run, tricky ones among them if asked."""
    pool = WORDS + TRICKY_TEXTS if tricky else WORDS
    return [f"{rng.choice(pool)} #{rng.randrange(10**6)}" for _ in range(count)]


def room_name(rng: random.Random) -> str:
    """A room name, a new one each run: code that hard-codes the check's room shows itself."""
    return f"{rng.choice(['lobby', 'kitchen', 'garden', 'attic'])}-{rng.randrange(1000)}"


@contextlib.asynccontextmanager
async def throwaway_redis() -> AsyncIterator[str]:
    """A fresh Redis for one check; its URL."""
    server = await asyncio.to_thread(RedisServer(timeout=5).start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop, 2)


@contextlib.asynccontextmanager
async def listening(url: str, channel: str) -> AsyncIterator[PubSub]:
    """Subscribed to ``channel``, confirmed by Redis: everything published from now on comes."""
    async with client(url) as redis, redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=2)
        yield pubsub


async def heard(pubsub: PubSub) -> list[Any]:
    """What was published since the last call, JSON parsed where it is JSON."""
    messages = []
    while message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2):
        with contextlib.suppress(ValueError):
            messages.append(json.loads(message["data"]))
            continue
        messages.append(message["data"])
    return messages


async def stream(url: str, room: str) -> list[tuple[str, str | None]]:
    """The room's stream: (entry id, text) per entry, oldest first."""
    async with client(url) as redis:
        # redis-py types a reply for any client; this one decodes (str) and the range is a list.
        entries = cast("list[tuple[str, dict[str, str]]]", await redis.xrange(keys(room)[1]))
        return [(entry, fields.get("text")) for entry, fields in entries]


class Paused(Redis):
    """A process the operating system stops after its first command, until ``resume`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paused, self.resume = asyncio.Event(), asyncio.Event()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        finally:
            if not self.paused.is_set():
                self.paused.set()
                await self.resume.wait()


STREAM_READS = frozenset({"XRANGE", "XREVRANGE", "XREAD"})


class LateSubscribe(PubSub):
    """A pub/sub whose SUBSCRIBE reaches Redis ``LATE`` seconds after ``subscribe()`` returns.

    As over a slow network path: only Redis's confirmation says the subscription is in place.
    """

    LATE = 0.2

    async def execute_command(self, *args: Any) -> None:
        if str(args[0]).upper() != "SUBSCRIBE":
            await super().execute_command(*args)
            return
        await self.connect()
        self._late = asyncio.ensure_future(self._send_later(*args))

    async def _send_later(self, *args: Any) -> None:
        await asyncio.sleep(self.LATE)
        await super().execute_command(*args)


class Hooked(Redis):
    """The follower's client: ``on_first_read`` runs right after its first read of a stream.

    ``reads`` counts its reads of a stream. With ``on_first_read`` set, its pub/sub's SUBSCRIBE
    reaches Redis late: reading the stream before Redis confirms it is too early.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_first_read: Callable[[Redis], Awaitable[None]] | None = None
        self.reads = 0  # of a stream, so far

    def pubsub(self, **kwargs: Any) -> PubSub:
        """With a hook, the subscription is slow to reach Redis (``LateSubscribe``)."""
        if self.on_first_read is None:
            return super().pubsub(**kwargs)
        return LateSubscribe(self.connection_pool, **kwargs)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        result = await super().execute_command(*args, **options)
        hook = self.on_first_read
        is_read = str(args[0]).upper() in STREAM_READS
        self.reads += is_read
        if hook is not None and is_read:
            self.on_first_read = None  # before the hook runs: its own commands pass straight
            await hook(self)
        return result
