"""Benchmark (c), cross-process delivery: latency at a fixed rate, same process vs through Redis.

Two course server processes that share rooms through Redis: receivers connect to one, the
sender to the other, so every message crosses Redis. The baseline is the same room in one
process. Both run at a fixed message rate well below the room's capacity, so the latency is the
delivery path's own, not queueing.

**Pending**: the course server does not share rooms through Redis yet (its own issue). Until it
does, ``python -m benchmarks.crossprocess`` measures the same-process baseline and says so; with
``--redis`` it starts a throwaway Redis and tries the two-process room, which then reports that
nothing arrived rather than hanging. The harness needs no change when Redis rooms land:
``Design(processes=2)`` with ``COURSE_REDIS_URL`` set is the whole of it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from benchmarks.designs import COURSE
from benchmarks.harness import Design, Scenario, measure
from benchmarks.stats import Run, table

PENDING = (
    "(c) cross-process delivery through Redis: PENDING. The course server has no Redis-backed "
    "rooms yet; the row above is the same-process baseline it will be compared with."
)


def through_redis(redis_url: str) -> Design:
    """The course's chat room across two server processes that share ``redis_url``."""
    return dataclasses.replace(
        COURSE,
        name="course, 2 processes + Redis",
        env=(*COURSE.env, ("COURSE_REDIS_URL", redis_url)),
        processes=2,
    )


async def run(receivers: int, messages: int, rate: float, redis: bool) -> tuple[list[Run], str]:
    scenario = Scenario(f"{rate:g} msg/s", receivers=receivers, messages=messages, rate=rate)
    runs = [await measure(dataclasses.replace(COURSE, name="course, 1 process"), scenario)]
    if not redis:
        return runs, PENDING
    from course_server.redis_server import RedisServer  # the course's own throwaway Redis

    with RedisServer() as server:
        try:
            runs.append(await measure(through_redis(server.url), scenario))
        except (TimeoutError, RuntimeError) as exc:
            return runs, f"(c) through Redis: no delivery across processes ({exc!r:.120})"
    return runs, "(c) cross-process delivery through Redis: measured above."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.crossprocess", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--receivers", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50, help="messages per second")
    parser.add_argument("--redis", action="store_true", help="try the two-process room too")
    args = parser.parse_args(argv)
    runs, verdict = asyncio.run(run(args.receivers, args.messages, args.rate, args.redis))
    print(table(runs))
    print()
    print(verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
