"""Plausible wrong answers to lesson 01's exercises, one bug each (see ``mutants``).

Equivalent survivors of ``scripts/mutate.py`` (01.2): ``after = ... else -1`` instead of ``0``:
the check's endpoint takes any int and ``Feed.after(-1)`` is ``Feed.after(0)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import Request
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from course_server.lessons.feed import Event, Feed, Poll
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


def make_long_poll(
    *,
    subscribe_from: Callable[[int], int] = lambda after: after,
    select: Callable[[Feed, int], list[Event]] = lambda feed, after: feed.after(after),
    last_id: Callable[[Feed, list[Event]], int] = lambda feed, events: feed.last_id,
    bound: Callable[[float], float] = lambda wait: wait,
) -> Any:
    """The solution's long poll with one piece changed."""

    async def long_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
        feed: Feed = request.app.state.feed
        if not select(feed, after):
            try:
                async with (
                    asyncio.timeout(bound(wait)),
                    contextlib.aclosing(feed.subscribe(subscribe_from(after))) as news,
                ):
                    async for _event in news:
                        break
            except TimeoutError:
                pass
        events = select(feed, after)
        return Poll(events=events, last_id=last_id(feed, events))

    return long_poll


mutant("01.1", "subscribes from 0, not from after: old events wake it at once")(
    make_long_poll(subscribe_from=lambda after: 0)
)
mutant("01.1", "slices the history by position: assumes ids start at 1")(
    make_long_poll(select=lambda feed, after: feed.after(0)[after:])
)
mutant("01.1", "last_id is the last returned event's, 0 when none")(
    make_long_poll(last_id=lambda feed, events: events[-1].id if events else 0)
)
mutant("01.1", "waits at most one second, whatever wait says")(
    make_long_poll(bound=lambda wait: min(wait, 1.0))
)
mutant("01.1", "int(wait): a wait of 0.5 s answers at once")(make_long_poll(bound=int))


@mutant("01.1", "answers with only the first new event")
async def first_event_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    try:
        async with asyncio.timeout(wait), contextlib.aclosing(feed.subscribe(after)) as news:
            async for event in news:
                return Poll(events=[event], last_id=feed.last_id)
    except TimeoutError:
        pass
    return Poll(events=[], last_id=feed.last_id)


@mutant("01.1", "polls with time.sleep: the server stops while it waits")
async def blocking_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    deadline = time.monotonic() + wait
    while not feed.after(after) and time.monotonic() < deadline:
        time.sleep(0.05)  # noqa: ASYNC251 - the mistake: no publish can come in meanwhile
    return Poll(events=feed.after(after), last_id=feed.last_id)


# --- 01.2 collect: more mistakes -------------------------------------------------------------

mutant("01.2", "resumes from the number of events so far: assumes ids 1, 2, 3")(
    make_collect(resume=len)
)


def make_collector(
    *,
    keep: Callable[[str], Any] = json.loads,
    stop_between_connections: bool = False,
    stop_when_empty: bool = False,
    stop_on_normal_close: bool = False,
    first_after: bool = False,
) -> Any:
    """The solution's client with one piece changed; ``keep(message)`` is what it collects."""

    async def collect(url: str, count: int) -> list[Any]:
        events: list[Any] = []
        after = last = 0
        while len(events) < count:
            async with connect(f"{url}?after={after}") as websocket:
                got = 0
                async for message in websocket:
                    events.append(keep(message))
                    last = json.loads(message)["id"]
                    got += 1
                    if len(events) == count and not stop_between_connections:
                        break
            if stop_when_empty and not got:
                break
            if stop_on_normal_close and websocket.close_code == 1000:
                break
            after = events[-1]["id"] if first_after else last  # IndexError if nothing came yet
        return events[:count] if not stop_between_connections else events

    return collect


mutant("01.2", "returns the ids, not the events")(
    make_collector(keep=lambda message: json.loads(message)["id"])
)
mutant("01.2", "returns the raw JSON text of each event")(make_collector(keep=str))
mutant("01.2", "checks count only between connections")(
    make_collector(stop_between_connections=True)
)
mutant("01.2", "events[-1] when a connection brought nothing: IndexError")(
    make_collector(first_after=True)
)
mutant("01.2", "gives up when a connection brings nothing")(make_collector(stop_when_empty=True))
mutant("01.2", "stops on a normal close (1000)")(make_collector(stop_on_normal_close=True))


@mutant("01.2", "cheat: makes up events 1 to count")
async def made_up(url: str, count: int) -> list[dict[str, Any]]:
    return [{"id": n, "data": f"event {n}", "published_at": 0.0} for n in range(1, count + 1)]


# --- 01.1 long_poll: a client ahead of the feed, late wake-ups, edges -----------------------


async def wait_for_news(feed: Feed, after: int, wait: float | None) -> None:
    """The solution's wait: until an event after ``after``, or ``wait`` seconds (None: for ever)."""
    try:
        async with asyncio.timeout(wait), contextlib.aclosing(feed.subscribe(after)) as news:
            async for _event in news:
                break
    except TimeoutError:
        pass


@mutant("01.1", "last_id is the client's own after when no event comes")
async def echo_after_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        await wait_for_news(feed, after, wait)
    events = feed.after(after)
    return Poll(events=events, last_id=events[-1].id if events else after)


@mutant("01.1", "waits only when after == last_id: a client ahead of the feed is answered at once")
async def equal_only_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if after == feed.last_id:
        await wait_for_news(feed, after, wait)
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "subscribes from the feed's last id: any new event wakes it, after ?after= or not")
async def any_news_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        await wait_for_news(feed, feed.last_id, wait)
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "looks for news once a second with asyncio.sleep: answers up to a second late")
async def every_second_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    deadline = time.monotonic() + wait
    # The mistake: it looks again once a second instead of waiting on the feed.
    while not feed.after(after) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(1)
    return Poll(events=feed.after(after), last_id=feed.last_id)


@mutant("01.1", "timeout(wait or None): wait=0 waits for ever")
async def zero_is_forever_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    if not feed.after(after):
        await wait_for_news(feed, after, wait or None)
    return Poll(events=feed.after(after), last_id=feed.last_id)


mutant("01.1", "events from after on (>=): repeats the client's last event")(
    make_long_poll(select=lambda feed, after: feed.after(after - 1))
)


@mutant("01.1", "ignores the history: waits for the next publish even with news waiting")
async def only_new_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    got: list[Event] = []
    try:
        async with (
            asyncio.timeout(wait),
            contextlib.aclosing(feed.subscribe(max(after, feed.last_id))) as news,
        ):
            async for event in news:
                got.append(event)
                break
    except TimeoutError:
        pass
    return Poll(events=got, last_id=feed.last_id)


@mutant("01.1", "answers with the events read before the wait: the news it woke for is left out")
async def stale_poll(request: Request, after: int = 0, wait: float = 5.0) -> Poll:
    feed: Feed = request.app.state.feed
    events = feed.after(after)
    if not events:
        await wait_for_news(feed, after, wait)
    return Poll(events=events, last_id=feed.last_id)


# --- 01.2 collect: empty connections later on, quiet periods, count edges, cheats ----------


@mutant("01.2", "recv() and except ConnectionClosedError: a 1000 or 1001 close raises through")
async def closed_error_collect(url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        after = events[-1]["id"] if events else 0
        async with connect(f"{url}?after={after}") as websocket:
            try:
                while len(events) < count:
                    events.append(json.loads(await websocket.recv()))
            except ConnectionClosedError:  # the mistake: a 1000 or 1001 close is ConnectionClosedOK
                continue
    return events


@mutant("01.2", "resumes after the last connection's last event: an empty connection restarts")
async def per_connection_collect(url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    while len(events) < count:
        after = batch[-1]["id"] if batch else 0
        batch = []
        async with connect(f"{url}?after={after}") as websocket:
            async for message in websocket:
                batch.append(json.loads(message))
                events.append(batch[-1])
                if len(events) == count:
                    break
    return events


@mutant("01.2", "reads each connection to its close, then keeps the first count events")
async def to_the_close_collect(url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        after = events[-1]["id"] if events else 0
        async with connect(f"{url}?after={after}") as websocket:
            events.extend([json.loads(message) async for message in websocket])
    return events[:count]


@mutant("01.2", "a second with no message ends the stream: returns what it has")
async def quiet_second_collect(url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        after = events[-1]["id"] if events else 0
        async with connect(f"{url}?after={after}") as websocket:
            while len(events) < count:
                try:
                    message = await asyncio.wait_for(websocket.recv(), 1)
                except TimeoutError:
                    return events
                except ConnectionClosed:
                    break
                events.append(json.loads(message))
    return events


@mutant("01.2", "while len(events) <= count: count 0 still reads an event")
async def one_more_collect(url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) <= count:
        after = events[-1]["id"] if events else 0
        async with connect(f"{url}?after={after}") as websocket:
            async for message in websocket:
                events.append(json.loads(message))
                if len(events) >= count:
                    break
        if len(events) >= count:
            break
    return events


@mutant("01.2", "reconnects with ?after=0 and drops the events it already has")
async def dedupe_collect(url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        async with connect(f"{url}?after=0") as websocket:
            async for message in websocket:
                event = json.loads(message)
                if event not in events:
                    events.append(event)
                if len(events) == count:
                    break
    return events


@mutant("01.2", "cheat: short-polls GET /feed/poll beside the WebSocket instead")
async def poll_cheat(url: str, count: int) -> list[dict[str, Any]]:
    base = url.replace("ws://", "http://").rsplit("/", 1)[0]
    async with httpx.AsyncClient() as client:
        while True:
            answer = (await client.get(f"{base}/feed/poll", params={"after": 0})).json()
            if len(answer["events"]) >= count:
                return list(answer["events"][:count])
            await asyncio.sleep(0.05)
