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

``python -m benchmarks.crossprocess --knee`` steps the rate up instead (1,000, 2,000, 5,000,
10,000, 15,000, 20,000 messages per second; about a second of messages per step, one run of the
baseline and one across processes each, a second where the first misses; a minute at most) and
prints the knee: the highest rate at which Redis adds at most 10 ms to p99 across processes,
with nothing lost. It stops at the first rate past the knee, or when the time budget is spent.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
import time

from benchmarks.designs import COURSE
from benchmarks.harness import Design, Scenario, measure
from benchmarks.machine import machine_busy, quiet
from benchmarks.stats import Run, table
from course_server.tools.redis_server import RedisServer

TARGET_MS = 5.0  # the issue's: Redis adds at most this much to p99 at 1,000 messages per second
BASELINE, SAME, ACROSS = "1 process", "1 process + Redis", "2 processes + Redis"
SETUPS = (BASELINE, SAME, ACROSS)
KNEE_RATES = (1000, 2000, 5000, 10_000, 15_000, 20_000)
KNEE_TARGET_MS = 10.0  # the issue's: at most this much added to p99, at 10,000 messages per second
KNEE_SECONDS = 1.0  # of messages per step
KNEE_BUDGET = 60.0  # seconds for the whole knee run; no step starts that would likely exceed it


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


def added_p99(runs: list[Run]) -> float | None:
    """What "2 processes + Redis" adds to the baseline's p99, in ms; None if either lost any."""
    found = {r.design: r for r in runs}
    base, across = found.get(BASELINE), found.get(ACROSS)
    if base is None or across is None or base.lost or across.lost:
        return None
    if not base.latencies_ns or not across.latencies_ns:
        return None
    return across.latency_ms()[1] - base.latency_ms()[1]


def verdict(runs: list[Run]) -> tuple[str, bool | None]:
    """``Redis adds X ms to p99 …`` against the target, and whether it is met (None: unknown)."""
    found = {r.design: r for r in runs}
    base, across = found.get(BASELINE), found.get(ACROSS)
    if base is None or across is None:
        return f"Redis adds: not measured (needs both {BASELINE!r} and {ACROSS!r})", None
    extra = added_p99(runs)
    if extra is None:
        lost = base.lost + across.lost
        return f"Redis adds: not measured, {lost} messages lost (see the notes above)", None
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


async def knee(
    *,
    receivers: int = 10,
    rates: tuple[float, ...] = KNEE_RATES,
    seconds: float = KNEE_SECONDS,
    budget: float = KNEE_BUDGET,
    wait_quiet: float = 0.0,
) -> list[tuple[float, list[Run]]]:
    """The baseline and "2 processes + Redis" at each rate in turn, up to the first one past the
    knee (or until the next step would likely overrun ``budget`` seconds): (rate, runs) each."""
    steps: list[tuple[float, list[Run]]] = []
    started = time.monotonic()
    step_took = 0.0
    for rate in rates:
        if steps and time.monotonic() - started + step_took * 1.5 > budget:
            break  # a faster rate's step takes a little longer than the last one's
        began = time.monotonic()
        messages = max(500, round(rate * seconds))
        runs: list[Run] = []
        for _ in range(2):  # a miss is measured twice (lowest p99 kept): noise only adds
            runs = lowest_p99(
                runs
                + await run(
                    receivers=receivers,
                    messages=messages,
                    rate=rate,
                    setups=(BASELINE, ACROSS),
                    wait_quiet=wait_quiet,
                )
            )
            if _within(runs):
                break
        step_took = time.monotonic() - began
        steps.append((rate, runs))
        if not _within(runs):
            break  # past the knee: a higher rate only adds
    return steps


def _within(runs: list[Run]) -> bool:
    extra = added_p99(runs)
    return extra is not None and extra <= KNEE_TARGET_MS


def knee_report(steps: list[tuple[float, list[Run]]], busy: float) -> str:
    """Every step's runs (the usual table), each step's added p99, and the knee."""
    lines = [table([r for _, runs in steps for r in runs]), ""]
    header = (
        f"{'rate msg/s':>10}  {BASELINE + ' p99':>15}  {ACROSS + ' p99':>25}  {'added p99':>10}"
    )
    lines += [header, "-" * len(header)]
    best: float | None = None
    for rate, runs in steps:
        found = {r.design: r for r in runs}
        p99 = [
            found[name].latency_ms()[1] if name in found else math.nan
            for name in (BASELINE, ACROSS)
        ]
        extra, within = added_p99(runs), _within(runs)
        if within:
            best = rate
        shown = f"{extra:+7.2f} ms" if extra is not None else "      lost"
        mark = "" if within else "  past the knee"
        lines.append(f"{rate:>10,.0f}  {p99[0]:>12.2f} ms  {p99[1]:>22.2f} ms  {shown:>10}{mark}")
    lines.append("")
    if not steps:
        lines.append("knee: not measured")
    elif best is None:
        first = f"{steps[0][0]:,.0f} msg/s"
        lines.append(f"knee: below {first} (Redis adds more than {KNEE_TARGET_MS:g} ms there)")
    else:
        lines.append(
            f"knee: {best:,.0f} msg/s, the highest rate measured at which Redis adds at most "
            f"{KNEE_TARGET_MS:g} ms to p99 across processes with nothing lost "
            f"(target 10,000 msg/s) [{'met' if best >= 10_000 else 'MISSED'}]"
        )
    lines.append(
        f"Machine: {busy:.1f} cores busy before the run; one run per setup and rate (two, "
        "lowest p99 kept, where the first missed), "
        f"about {KNEE_SECONDS:g} s of messages each. Where the baseline's own p99 is high, the "
        "receiving process is saturated with or without Redis (see its CPU column)."
    )
    return "\n".join(lines)


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
    parser.add_argument(
        "--knee",
        action="store_true",
        help=f"step the rate up ({', '.join(f'{r:,}' for r in KNEE_RATES)} msg/s) and print the "
        f"highest at which Redis adds at most {KNEE_TARGET_MS:g} ms to p99 (about a minute)",
    )
    args = parser.parse_args(argv)
    if args.knee:
        busy = machine_busy()
        steps = asyncio.run(knee(receivers=args.receivers, wait_quiet=args.wait_quiet))
        print(knee_report(steps, busy))
        return 0
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
