"""Benchmark (c), cross-process delivery: latency at a fixed rate, same process vs through Redis.

``python -m benchmarks.crossprocess --rate 1000 --messages 2000`` sends from one client to a chat
room at a fixed rate and times every delivery to the room's receivers, in three setups:

- **1 process**: sender and receivers on one course server, the in-process broker: the baseline.
- **1 process + Redis**: the same, with the server sharing its rooms through Redis: every message
  makes the round trip through Redis although nobody else is listening.
- **2 processes + Redis**: receivers on one ``python -m course_server`` process, the sender on
  another; both share a throwaway Redis (``course_server.tools.redis_server``), so every message
  crosses processes: what a deployment with several replicas does.

The rate is fixed, not "as fast as it goes", so a latency is mostly the delivery path's own.
Mostly: on two cores, 1,000 messages per second to ten receivers keeps the baseline server about
half busy, and a server that also talks to Redis for every message nearly all the time, so part
of what Redis adds is that CPU (the ``CPU`` and ``µs/dlv`` columns show it).

The harness is the fan-out benchmark's (``harness.measure``: picows receivers in a process of
their own, the servers' CPU); ``Design(processes=2)`` puts the sender on the second server. Noise
only ever adds latency, so of ``--repeat`` runs per setup the one with the lowest p99 is kept.
The verdict compares the p99 of "2 processes + Redis" with the baseline's: the issue's target
is at most 5 ms more, at 1,000 messages per second.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys

from benchmarks.designs import COURSE
from benchmarks.fanout import quiet
from benchmarks.harness import Design, Scenario, measure
from benchmarks.machine import machine_busy
from benchmarks.stats import Run, table
from course_server.tools.redis_server import RedisServer

TARGET_MS = 5.0  # the issue's: Redis adds at most this much to p99 at 1,000 messages per second
BASELINE, SAME, ACROSS = "1 process", "1 process + Redis", "2 processes + Redis"
SETUPS = (BASELINE, SAME, ACROSS)


def setup(name: str, redis_url: str) -> Design:
    """The course's chat room as ``name`` says: one process or two, with or without Redis."""
    if name == BASELINE:
        return dataclasses.replace(COURSE, name=name)
    return dataclasses.replace(
        COURSE,
        name=name,
        env=(*COURSE.env, ("COURSE_REDIS_URL", redis_url)),
        processes=2 if name == ACROSS else 1,
    )


def lowest_p99(runs: list[Run]) -> list[Run]:
    """Of repeated runs of one setup, the one with the lowest p99: noise only adds latency."""
    kept: dict[str, Run] = {}
    for run in runs:
        if run.design not in kept or _p99(run) < _p99(kept[run.design]):
            kept[run.design] = run
    return list(kept.values())


def _p99(run: Run) -> float:
    p99 = run.latency_ms()[1]
    return math.inf if math.isnan(p99) or run.lost else p99


async def run(
    *,
    receivers: int = 10,
    messages: int = 2000,
    rate: float = 1000.0,
    repeat: int = 1,
    setups: tuple[str, ...] = SETUPS,
    wait_quiet: float = 0.0,
) -> list[Run]:
    """Every setup ``repeat`` times, interleaved (a busy spell hits them all alike); best kept."""
    scenario = Scenario(f"{rate:g} msg/s", receivers=receivers, messages=messages, rate=rate)
    runs: list[Run] = []
    redis = RedisServer() if any(name != BASELINE for name in setups) else None
    if redis is not None:
        await asyncio.to_thread(redis.start)
    try:
        for _ in range(repeat):
            for name in setups:
                if wait_quiet:
                    await quiet(wait_quiet)
                design = setup(name, redis.url if redis is not None else "")
                # One load generator process: a few receivers, and one fewer process on the cores.
                runs.append(await measure(design, scenario, workers=1))
    finally:
        if redis is not None:
            await asyncio.to_thread(redis.stop)
    return lowest_p99(runs)


def added(runs: list[Run]) -> list[str]:
    """What each setup adds to the baseline's p50 and p99, one line each."""
    found = {r.design: r for r in runs}
    base = found.get(BASELINE)
    lines = []
    for name in (SAME, ACROSS):
        other = found.get(name)
        if base is None or other is None or not base.latencies_ns or not other.latencies_ns:
            continue
        (b50, b99, _), (o50, o99, _) = base.latency_ms(), other.latency_ms()
        added_ms = f"p50 {o50 - b50:+6.2f} ms, p99 {o99 - b99:+6.2f} ms"
        lines.append(f"{name:<21} vs {BASELINE}: {added_ms}")
    return lines


def verdict(runs: list[Run]) -> tuple[str, bool | None]:
    """``Redis adds X ms to p99 …`` against the target, and whether it is met (None: unknown)."""
    found = {r.design: r for r in runs}
    base, across = found.get(BASELINE), found.get(ACROSS)
    if base is None or across is None:
        return f"Redis adds: not measured (needs both {BASELINE!r} and {ACROSS!r})", None
    lost = base.lost + across.lost
    if lost or not base.latencies_ns or not across.latencies_ns:
        return f"Redis adds: not measured, {lost} messages lost (see the notes above)", None
    extra = across.latency_ms()[1] - base.latency_ms()[1]
    met = extra <= TARGET_MS
    return (
        f"Redis adds {extra:.2f} ms to p99 across processes ({across.scenario}, "
        f"{across.receivers} receiver(s)): target ≤ {TARGET_MS:g} ms [{'met' if met else 'MISSED'}]"
    ), met


def report(runs: list[Run], busy: float, repeat: int) -> str:
    return "\n".join(
        [
            table(runs),
            "",
            *added(runs),
            verdict(runs)[0],
            "",
            f"Machine: {busy:.1f} cores busy before the run; of {repeat} run(s) per setup the "
            "lowest p99 is shown. Columns as in benchmarks.fanout; CPU is the receivers' server, "
            "so with 2 processes, other includes the sender's server and Redis.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.crossprocess", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rate", type=float, default=1000, help="messages per second")
    parser.add_argument("--messages", type=int, default=2000, help="messages per run")
    parser.add_argument("--receivers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs per setup; lowest p99 kept")
    parser.add_argument(
        "--setups", default=",".join(SETUPS), help=f"comma-separated, of: {', '.join(SETUPS)}"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each run, wait up to S s for other programs to quieten (shared machines)",
    )
    args = parser.parse_args(argv)
    setups = tuple(s.strip() for s in args.setups.split(",") if s.strip())
    if unknown := set(setups) - set(SETUPS):
        parser.error(f"unknown setups {sorted(unknown)}; choose from {list(SETUPS)}")
    busy = machine_busy()
    runs = asyncio.run(
        run(
            receivers=args.receivers,
            messages=args.messages,
            rate=args.rate,
            repeat=args.repeat,
            setups=setups,
            wait_quiet=args.wait_quiet,
        )
    )
    print(report(runs, busy, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
