"""Plausible wrong answers to lesson 01's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from websockets.asyncio.client import connect

from course_server.feed import Feed, Poll
from mutants.registry import mutant

# --- 01.1 long_poll --------------------------------------------------------------------------


@mutant("01.1", "short polling: answers at once, news or not")
async def short_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "sleeps the whole wait, then answers")
async def sleepy_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        await asyncio.sleep(wait)
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "no deadline: waits forever when nothing comes")
async def patient_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        async with contextlib.aclosing(feed.subscribe(after)) as news:
            async for _event in news:
                break
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "lets the timeout escape: HTTP 500 instead of an empty answer")
async def raising_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        async with asyncio.timeout(wait), contextlib.aclosing(feed.subscribe(after)) as news:
            async for _event in news:
                break
    return Poll(events=feed.after(after), last_id=feed.last_id)


# --- 01.2 collect ----------------------------------------------------------------------------


def make_collect(*, resume: Callable[[list[dict[str, Any]]], int] | None) -> Any:
    """``resume(events)``: the ``after`` to reconnect with; None: no reconnecting at all."""

    async def collect(url: str, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = 0
        while len(events) < count:
            async with connect(f"{url}?after={after}") as websocket:
                async for message in websocket:
                    events.append(json.loads(message))
                    if len(events) == count:
                        break
            if resume is None:
                break
            after = resume(events)
        return events

    return collect


mutant("01.2", "reconnects from the start: repeats events")(make_collect(resume=lambda e: 0))
mutant("01.2", "reconnects one past the last id: skips events")(
    make_collect(resume=lambda e: e[-1]["id"] + 1)
)
mutant("01.2", "gives up when the connection drops")(make_collect(resume=None))
