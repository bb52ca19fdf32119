"""Plausible wrong answers to lesson 07's exercises (Redis), registered in ``mutants.MUTANTS``.

As in the other lessons: one bug each, the solution with that one mistake written out in full.
"""

from __future__ import annotations

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


# --- 07.2 follow -----------------------------------------------------------------------------


def make_follow(
    *,
    inclusive: bool = False,
    backlog: bool = True,
    fill: bool = True,
    dedupe: bool = True,
    subscribe_first: bool = True,
    gap_upto_latest: bool = False,
) -> Any:
    async def follow(redis: Redis, room: str, last_id: int) -> AsyncIterator[dict[str, Any]]:
        _, log, channel = room_keys(room)

        async def stored(after: int, upto: str = "+") -> list[dict[str, Any]]:
            start = f"0-{after}" if inclusive else f"(0-{after}"
            entries = await redis.xrange(log, min=start, max=upto)
            return [{"id": int(entry[2:]), "text": fields["text"]} for entry, fields in entries]

        earlier = await stored(last_id) if backlog and not subscribe_first else []
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            await pubsub.get_message(timeout=5)
            if backlog and subscribe_first:
                earlier = await stored(last_id)
            for event in earlier:
                yield event
                last_id = event["id"]
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is None:
                    continue
                event = json.loads(message["data"])
                if dedupe and event["id"] <= last_id:
                    continue
                if fill and event["id"] > last_id + 1:
                    upto = "+" if gap_upto_latest else f"0-{event['id'] - 1}"
                    for missed in await stored(last_id, upto=upto):
                        yield missed
                yield event
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
