"""Plausible wrong answers to lesson 07's exercises (Redis), registered in ``mutants.MUTANTS``.

As in the other lessons: one bug each, the solution with that one mistake written out in full.

What ``scripts/mutate.py --exercise 07.2`` leaves alive (6 of 43), and why no check kills it:

- ``await pubsub.get_message(timeout=5)``: its 5 changed to 4 or 6. Equivalent: the
  confirmation comes in milliseconds. (Deleting the call is caught: the check delays the
  SUBSCRIBE, ``redis_tools.LateSubscribe``.)
- ``ignore_subscribe_messages=False``, and ``if message is None: continue`` deleted or made
  ``break``: the confirmation was read already, and ``get_message(timeout=None)`` returns a
  message or waits, so no ``None`` and no subscribe message ever comes. Equivalent.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from mutants.registry import mutant

HISTORY = 20


def room_keys(room: str) -> tuple[str, str, str]:
    return f"room:{room}:seq", f"room:{room}:log", f"room:{room}"


# --- 07.1 publish ----------------------------------------------------------------------------

KEEP = "redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, 'text', ARGV[1])"
AS_JSON = "cjson.encode({id = id, text = ARGV[1]})"


def make_publish(*, keep: str = KEEP, payload: str = AS_JSON) -> Any:
    script = f"""
    local id = redis.call('INCR', KEYS[1])
    {keep}
    redis.call('PUBLISH', KEYS[3], {payload})
    return id
    """

    async def publish(redis: Redis, room: str, text: str) -> int:
        return await redis.eval(script, 3, *room_keys(room), text, HISTORY)

    return publish


mutant("07.1", "publishes without keeping the event in the stream")(make_publish(keep=""))
mutant("07.1", "keeps every event: no MAXLEN")(
    make_publish(keep="redis.call('XADD', KEYS[2], '0-' .. id, 'text', ARGV[1])")
)
mutant("07.1", "trims roughly (MAXLEN ~): more than HISTORY stay")(
    make_publish(keep=KEEP.replace("'MAXLEN',", "'MAXLEN', '~',"))
)
mutant("07.1", "publishes the text alone, without its id")(make_publish(payload="ARGV[1]"))


@mutant("07.1", "INCR, XADD and PUBLISH as three commands: another process gets in between")
async def publish_in_three_steps(redis: Redis, room: str, text: str) -> int:
    seq, log, channel = room_keys(room)
    event_id = await redis.incr(seq)
    await redis.xadd(log, {"text": text}, id=f"0-{event_id}", maxlen=HISTORY, approximate=False)
    await redis.publish(channel, json.dumps({"id": event_id, "text": text}))
    return event_id


KEEP_GIVEN_ID = """
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '0-' .. ARGV[1], 'text', ARGV[2])
redis.call('PUBLISH', KEYS[2], cjson.encode({id = tonumber(ARGV[1]), text = ARGV[2]}))
"""
_counters: weakref.WeakKeyDictionary[Redis, dict[str, int]] = weakref.WeakKeyDictionary()


@mutant("07.1", "counts ids in the process's memory, not in Redis")
async def publish_counting_in_memory(redis: Redis, room: str, text: str) -> int:
    counters = _counters.setdefault(redis, {})
    counters[room] = event_id = counters.get(room, 0) + 1
    _, log, channel = room_keys(room)
    await redis.eval(KEEP_GIVEN_ID, 2, log, channel, event_id, text, HISTORY)
    return event_id


CONCATENATED = """'{"id": ' .. id .. ', "text": "' .. ARGV[1] .. '"}'"""
mutant("07.1", "builds the JSON by joining strings: a quote or newline breaks it")(
    make_publish(payload=CONCATENATED)
)
mutant("07.1", "publishes the id as text: {'id': '7'}")(
    make_publish(payload="cjson.encode({id = tostring(id), text = ARGV[1]})")
)
mutant("07.1", "lets Redis choose the entry id (*): no 0-N to read from")(
    make_publish(keep="redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'text', ARGV[1])")
)
mutant("07.1", "trims before adding: HISTORY + 1 stay")(
    make_publish(
        keep="redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[2])\n"
        "    redis.call('XADD', KEYS[2], '0-' .. id, 'text', ARGV[1])"
    )
)


@mutant("07.1", "puts the text into the script's source: a quote breaks the Lua")
async def publish_spliced(redis: Redis, room: str, text: str) -> int:
    script = f"""
    local id = redis.call('INCR', KEYS[1])
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], '0-' .. id, 'text', '{text}')
    redis.call('PUBLISH', KEYS[3], cjson.encode({{id = id, text = '{text}'}}))
    return id
    """
    return await redis.eval(script, 3, *room_keys(room), HISTORY)


ONE_COUNTER = """
local id = redis.call('INCR', 'seq')
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, 'text', ARGV[1])
redis.call('PUBLISH', KEYS[3], cjson.encode({id = id, text = ARGV[1]}))
return id
"""


@mutant("07.1", "one counter for every room")
async def publish_one_counter(redis: Redis, room: str, text: str) -> int:
    return await redis.eval(ONE_COUNTER, 3, *room_keys(room), text, HISTORY)


NEXT_FROM_LENGTH = """
local id = redis.call('XLEN', KEYS[2]) + 1
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, 'text', ARGV[1])
redis.call('PUBLISH', KEYS[3], cjson.encode({id = id, text = ARGV[1]}))
return id
"""


@mutant("07.1", "the next id is the stream's length + 1: wrong once it is trimmed")
async def publish_next_from_length(redis: Redis, room: str, text: str) -> int:
    return await redis.eval(NEXT_FROM_LENGTH, 3, *room_keys(room), text, HISTORY)


@mutant("07.1", "returns the entry id '0-N', not N")
async def publish_entry_id(redis: Redis, room: str, text: str) -> Any:
    return f"0-{await make_publish()(redis, room, text)}"


_lock = asyncio.Lock()


@mutant("07.1", "three commands under an asyncio.Lock: one process's lock holds no other back")
async def publish_under_a_lock(redis: Redis, room: str, text: str) -> int:
    async with _lock:
        return await publish_in_three_steps(redis, room, text)


_first_ids: weakref.WeakKeyDictionary[Redis, dict[str, int]] = weakref.WeakKeyDictionary()


@mutant("07.1", "reads the counter once, then counts in memory")
async def publish_reading_once(redis: Redis, room: str, text: str) -> int:
    counters = _first_ids.setdefault(redis, {})
    if room not in counters:
        counters[room] = int(await redis.get(room_keys(room)[0]) or 0)
    counters[room] = event_id = counters[room] + 1
    await redis.set(room_keys(room)[0], event_id)
    _, log, channel = room_keys(room)
    await redis.eval(KEEP_GIVEN_ID, 2, log, channel, event_id, text, HISTORY)
    return event_id


# --- 07.2 follow -----------------------------------------------------------------------------


def make_follow(
    *,
    inclusive: bool = False,
    backlog: bool = True,
    fill: bool = True,
    dedupe: bool = True,
    subscribe_first: bool = True,
    gap_upto_latest: bool = False,
    quiet_ends: bool = False,
    as_text: bool = False,
    track_backlog: bool = True,
    newest_first: bool = False,
    gap_count: int | None = None,
    raw: bool = False,
    read_always: bool = False,
    confirmed: bool = True,
) -> Any:
    async def follow(redis: Redis, room: str, last_id: int) -> AsyncIterator[dict[str, Any]]:
        _, log, channel = room_keys(room)

        async def stored(
            after: int, upto: str = "+", count: int | None = None
        ) -> list[dict[str, Any]]:
            start = f"0-{after}" if inclusive else f"(0-{after}"
            if newest_first:
                entries = await redis.xrevrange(log, max=upto, min=start, count=count)
            else:
                entries = await redis.xrange(log, min=start, max=upto, count=count)
            return [{"id": int(entry[2:]), "text": fields["text"]} for entry, fields in entries]

        def seen(event_id: int, last: int) -> bool:
            return str(event_id) <= str(last) if as_text else event_id <= last

        earlier = await stored(last_id) if backlog and not subscribe_first else []
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            if confirmed:
                await pubsub.get_message(timeout=5)
            if backlog and subscribe_first:
                earlier = await stored(last_id)
            for event in earlier:
                yield event
                if track_backlog:
                    last_id = event["id"]
            while True:
                wait = 1.0 if quiet_ends else None
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                if message is None:
                    if quiet_ends:
                        return  # nothing for a second: the room must be over
                    continue
                event = json.loads(message["data"])
                if dedupe and seen(event["id"], last_id):
                    continue
                if fill and event["id"] > last_id + (0 if read_always else 1):
                    upto = "+" if gap_upto_latest else f"0-{event['id'] - 1}"
                    for missed in await stored(last_id, upto=upto, count=gap_count):
                        yield missed
                yield message["data"] if raw else event
                last_id = event["id"]

    return follow


mutant("07.2", "reads the stream from last_id itself: the last event seen comes again")(
    make_follow(inclusive=True)
)
mutant("07.2", "pub/sub only: what happened while away is never read")(make_follow(backlog=False))
mutant("07.2", "never fills a gap: what pub/sub dropped stays lost")(make_follow(fill=False))
mutant("07.2", "no dedupe: an event that comes twice is yielded twice")(make_follow(dedupe=False))
mutant("07.2", "reads the stream, then subscribes: an event in between is lost")(
    make_follow(subscribe_first=False)
)
mutant("07.2", "reads a gap up to the latest entry, then yields the new event again")(
    make_follow(gap_upto_latest=True)
)
mutant("07.2", "gives up after a quiet second: get_message(timeout=1) returned None")(
    make_follow(quiet_ends=True)
)
mutant("07.2", "compares ids as text: '10' comes before '9'")(make_follow(as_text=True))
mutant("07.2", "forgets what the backlog yielded: it comes again as a gap")(
    make_follow(track_backlog=False)
)
mutant("07.2", "reads the gap newest first (XREVRANGE)")(make_follow(newest_first=True))
mutant("07.2", "reads one event of a gap (COUNT 1)")(make_follow(gap_count=1))
mutant("07.2", "yields the message's JSON text, not the event")(make_follow(raw=True))
mutant("07.2", "reads the stream for every live event, gap or not")(make_follow(read_always=True))
mutant("07.2", "subscribes, but reads the stream before Redis confirms it")(
    make_follow(confirmed=False)
)


@mutant("07.2", "the id from the entry id's first part: 0 for every event")
async def follow_first_part(redis: Redis, room: str, last_id: int) -> AsyncIterator[dict[str, Any]]:
    _, log, channel = room_keys(room)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        await pubsub.get_message(timeout=5)
        for entry, fields in await redis.xrange(log, min=f"(0-{last_id}", max="+"):
            yield {"id": int(entry.split("-")[0]), "text": fields["text"]}
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None:
                yield json.loads(message["data"])


# --- 07.1, more mistakes -----------------------------------------------------------------------


@mutant("07.1", "strips the text before publishing: its own spaces are lost")
async def publish_stripped(redis: Redis, room: str, text: str) -> int:
    return await make_publish()(redis, room, text.strip())


mutant("07.1", "keeps the event's JSON in the stream under 'data', not its text under 'text'")(
    make_publish(
        keep="redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, "
        "'data', cjson.encode({id = id, text = ARGV[1]}))"
    )
)
mutant("07.1", "entry ids N-0, not 0-N")(
    make_publish(keep="redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], id .. '-0', 'text', ARGV[1])")
)
NO_RETURN = """
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. id, 'text', ARGV[1])
redis.call('PUBLISH', KEYS[3], cjson.encode({id = id, text = ARGV[1]}))
"""


@mutant("07.1", "the script returns nothing: publish returns None, not the id")
async def publish_no_return(redis: Redis, room: str, text: str) -> Any:
    return await redis.eval(NO_RETURN, 3, *room_keys(room), text, HISTORY)


@mutant("07.1", "INCR, then XADD and PUBLISH in a MULTI: the INCR is a step of its own")
async def publish_incr_then_multi(redis: Redis, room: str, text: str) -> int:
    seq, log, channel = room_keys(room)
    event_id = await redis.incr(seq)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(log, {"text": text}, id=f"0-{event_id}", maxlen=HISTORY, approximate=False)
        pipe.publish(channel, json.dumps({"id": event_id, "text": text}))
        await pipe.execute()
    return event_id


# --- 07.2, more mistakes -----------------------------------------------------------------------


def follow_variant(
    *,
    prefix: str = "0-",
    move_on: bool = True,
    by_text: bool = False,
    page: int | None = None,
    gap_inclusive: bool = False,
) -> Any:
    """The solution with one change: ranges' id prefix, last_id kept up, dedupe, paging."""

    async def follow(redis: Redis, room: str, last_id: int) -> AsyncIterator[dict[str, Any]]:
        _, log, channel = room_keys(room)
        texts: set[str] = set()

        async def stored(after: int, upto: str = "+", open_: bool = True) -> list[dict[str, Any]]:
            start = f"({prefix}{after}" if open_ else f"{prefix}{after}"
            entries = await redis.xrange(log, min=start, max=upto, count=page)
            return [{"id": int(e.split("-")[1]), "text": f["text"]} for e, f in entries]

        def fresh(event: dict[str, Any]) -> bool:
            if by_text:
                new = event["text"] not in texts
                texts.add(event["text"])
                return new
            return bool(event["id"] > last_id)

        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            await pubsub.get_message(timeout=5)
            for event in await stored(last_id):
                if fresh(event):
                    yield event
                last_id = event["id"]
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is None:
                    continue
                event = json.loads(message["data"])
                if not fresh(event):
                    continue
                if event["id"] > last_id + 1:
                    upto = f"{prefix}{event['id'] - 1}"
                    for missed in await stored(last_id, upto, open_=not gap_inclusive):
                        if not by_text or missed["text"] not in texts:
                            texts.add(missed["text"])
                            yield missed
                yield event
                if move_on:
                    last_id = event["id"]

    return follow


mutant("07.2", "ranges without the '0-': (N is N-0, past every entry")(follow_variant(prefix=""))
mutant("07.2", "last_id is not moved on by live events: the next one reads a gap again")(
    follow_variant(move_on=False)
)
mutant("07.2", "dedupes by text: a second event that says the same is dropped")(
    follow_variant(by_text=True)
)
mutant("07.2", "reads the stream in one page of 10 (COUNT 10): a longer backlog is cut")(
    follow_variant(page=10)
)
mutant("07.2", "reads a gap from the last id seen itself: that event comes again")(
    follow_variant(gap_inclusive=True)
)
