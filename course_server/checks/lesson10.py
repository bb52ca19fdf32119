"""Checks for lesson 10's exercise: a broadcast that encodes its message once for every receiver.

The work is counted, not timed: the check hands ``broadcast`` an ``encode`` that counts its
calls, so the verdict names how many encodes the answer made against the naive per-receiver
figure, the same on any machine.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.cases import seeded
from course_server.checks.harness import Harness

Send = Callable[[str], Awaitable[None]]

fan_out = exercise("10.1", "Encode a broadcast once", target="broadcast")


class Run:
    """What one run of broadcasts saw: each receiver's texts, and how often ``encode`` ran."""

    def __init__(self, receivers: int) -> None:
        self.got: list[list[str]] = [[] for _ in range(receivers)]
        self.after: list[list[str]] = []  # the texts when the last broadcast returned
        self.encodes = 0
        self.cancelled: dict[int, float] = {}  # receiver → seconds its cancelled send had waited

    def encode(self, message: Any) -> str:
        self.encodes += 1
        return json.dumps(message)


async def run_broadcasts(
    broadcast: Any, messages: list[dict[str, Any]], slow: set[int], *, stall: float = 0
) -> Run:
    """Broadcast each message in turn to receivers 0..n; a receiver in ``slow`` takes its time.

    A slow receiver waits longer for earlier messages, so sends left running in the background
    finish out of order; its first send also stalls ``stall`` seconds, longer than a send
    timeout a learner might pick (a cancelled send is recorded: a slow receiver is waited for,
    never dropped). Sends still running when the broadcasts are done get a moment to finish
    (to tell "late" from "lost").
    """
    count = max(slow, default=0) + 4
    run = Run(count)
    total = len(messages)
    calls = [0] * count

    def receiver(n: int) -> Send:
        async def send(text: str) -> None:
            calls[n] += 1
            if n in slow:
                delay = 0.02 * (total + 1 - calls[n]) + (stall if calls[n] == 1 else 0)
                started = asyncio.get_running_loop().time()
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    run.cancelled[n] = asyncio.get_running_loop().time() - started
                    raise
            run.got[n].append(text)

        return send

    receivers = [receiver(n) for n in range(count)]
    for message in messages:
        await broadcast(message, receivers, run.encode)
    run.after = [list(texts) for texts in run.got]
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if others:
        await asyncio.wait(others, timeout=stall + 1)
    return run


def messages_for(check: str, count: int) -> list[dict[str, Any]]:
    rng = seeded(f"10.1 {check}")
    first = rng.randint(1, 900)
    return [{"id": first + i, "text": f"m{rng.randint(0, 99)}-{i}"} for i in range(count)]


def delivered(run: Run, messages: list[dict[str, Any]]) -> None:
    """Fail unless every receiver got every message, in order, by the time broadcast returned."""
    expected = [json.dumps(m) for m in messages]
    for n, waited in sorted(run.cancelled.items())[:1]:
        raise CheckFailed(
            f"receiver {n} took its time ({waited:.2g} s) and its send was cancelled: a slow "
            "receiver must be waited for, not dropped (no send timeout)"
        )
    for n, texts in enumerate(run.after):
        if texts == expected:
            continue
        final = run.got[n]
        odd = next((t for t in final if not isinstance(t, str)), None)
        if odd is not None:
            raise CheckFailed(
                f"receiver {n} was sent {odd!r}, a {type(odd).__name__}: send the text that "
                "encode(message) returned"
            )
        if sorted(final) == sorted(expected) and len(texts) < len(expected):
            raise CheckFailed(
                f"receiver {n} had {len(texts)} of {len(expected)} messages when broadcast "
                "returned: await each send before returning (no tasks left running)"
            )
        if sorted(final) == sorted(expected):
            raise CheckFailed(f"receiver {n} got every message, but out of order: {final}")
        lost = [t for t in expected if t not in final]
        if lost:
            raise CheckFailed(
                f"receiver {n} never got {lost[0]} ({len(lost)} lost of {len(expected)})"
            )
        raise CheckFailed(f"receiver {n} got {final}, not {expected}")


STALL = 2.0
"""Seconds a slow receiver's first send takes in the check: past any short send timeout."""


@fan_out.check("every receiver gets every message, in order, a slow one too", timeout=5 + STALL * 2)
async def _every(h: Harness, broadcast: Any) -> None:
    messages = messages_for("every", 5)
    run = await h.call(functools.partial(run_broadcasts, stall=STALL), broadcast, messages, {1})
    delivered(run, messages)


@fan_out.check("each broadcast sends its own message, not an earlier one's text")
async def _own(h: Harness, broadcast: Any) -> None:
    messages = messages_for("own", 3)
    run = await h.call(run_broadcasts, broadcast, messages, set())
    delivered(run, messages)


@fan_out.check("encodes each message once, whatever the number of receivers")
async def _once(h: Harness, broadcast: Any) -> None:
    messages = messages_for("once", 4)
    run = await h.call(run_broadcasts, broadcast, messages, {7})
    receivers = len(run.got)
    naive = receivers * len(messages)
    expect(
        run.encodes == len(messages),
        f"{len(messages)} broadcasts to {receivers} receivers called encode {run.encodes} times; "
        f"once per message is {len(messages)}, encoding per receiver is {naive}",
    )
