"""Checks for lesson 01's exercises: long polling, and a WebSocket client that resumes.

Both run against lesson 01's ``Feed`` on a fresh app. The long poll is served beside
``feed.router`` (``POST /feed/publish``) with ``app.state.feed``. The resuming client meets an
endpoint that drops every connection after one to four events, closing it with 1001 as a server
going down does (or 1000), on a server with no other route: its events come only from there.

Feeds often start with ids from a random point and with gaps, as a restarted or trimmed feed
has: an answer that counts positions instead of comparing ids fails there. The examples change
from run to run, so an answer shaped like one of them cannot pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

import httpx
from fastapi import WebSocket

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.lab.waiting import eventually
from course_server.lessons import feed

# --- 01.1 long polling -----------------------------------------------------------------------

long_poll = exercise(
    "01.1", "Long polling", target="long_poll", references=("course_server.lessons.feed:poll",)
)


async def publish(client: httpx.AsyncClient, *data: str) -> None:
    for item in data:
        response = await client.post("/feed/publish", json={"data": item})
        response.raise_for_status()


async def ask(
    client: httpx.AsyncClient, after: int, wait: float, limit: float = 2
) -> tuple[Any, float]:
    """One long poll, given ``limit`` seconds to answer; its JSON answer and how long it took."""
    started = time.monotonic()
    params = {"after": after, "wait": wait}
    try:
        response = await client.get("/feed/longpoll", params=params, timeout=limit)
    except httpx.TimeoutException:
        raise CheckFailed(
            f"?after={after}&wait={wait:g} got no answer within {limit:g} s"
        ) from None
    expect(response.status_code == 200, f"?after={after} answered HTTP {response.status_code}")
    return response.json(), time.monotonic() - started


def ids(answer: Any) -> list[Any]:
    return [event.get("id") for event in answer.get("events", [])]


def seeded_feed(rng: random.Random, count: int, history_size: int = 1000) -> feed.Feed:
    """A feed already holding ``count`` events, ids from a random start and with gaps.

    A feed lives on after a restart or a trim: its ids grow, but need not start at 1 or be
    consecutive, so code that counts positions instead of comparing ids shows here.
    """
    news = feed.Feed(history_size=history_size)
    event_id = rng.randint(100, 900)
    for n in range(count):
        event_id += rng.choice([1, 1, 2, 5])
        news.append(feed.Event(id=event_id, published_at=time.time(), data=f"old {n}"))
    return news


async def poll_client(h: Harness, endpoint: Any, news: feed.Feed) -> httpx.AsyncClient:
    """Serve the learner's endpoint at ``/feed/longpoll`` beside ``news``; a client for it."""
    h.get("/feed/longpoll", endpoint)
    h.app.state.feed = news
    h.app.include_router(feed.router)
    server = await h.serve()
    return httpx.AsyncClient(base_url=server.http_url, timeout=3)


def history_ids(news: feed.Feed) -> list[int]:
    return [event.id for event in news.after(0)]


@long_poll.check("answers at once with every event after the given id, whatever the ids")
async def _news(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    news = seeded_feed(rng, rng.randint(5, 9))
    known = history_ids(news)
    after = rng.choice(known[1:-2])
    wanted = [i for i in known if i > after]
    async with await poll_client(h, endpoint, news) as client:
        answer, took = await ask(client, after=after, wait=5)
    expect(
        ids(answer) == wanted,
        f"the feed holds the ids {known}; ?after={after} returned {ids(answer)}, not {wanted}",
    )
    expect(
        answer.get("last_id") == known[-1], f"last_id was {answer.get('last_id')}, not {known[-1]}"
    )
    expect(took < 1, f"with news waiting, the answer took {took:.1f} s")


@long_poll.check("waits for the next event, and answers as soon as it comes")
async def _waits(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    news = seeded_feed(rng, rng.randint(2, 5))
    last = news.last_id
    async with await poll_client(h, endpoint, news) as client:
        waiting = asyncio.ensure_future(ask(client, after=last, wait=5, limit=1.5))
        await asyncio.sleep(0.15)  # the news comes a while after the question: that is the point
        published = time.monotonic()
        await publish(client, "new")
        answer, _ = await waiting
        late = time.monotonic() - published
    expect(
        ids(answer) == [last + 1],
        f"?after={last} returned {ids(answer)}, not [{last + 1}]: wait for the next event",
    )
    # Waking up takes milliseconds; code that looks every second or so is 0.85 s late here.
    expect(
        late < 0.6,
        f"the answer came {late:.2f} s after the event: wake up at once (feed.subscribe), "
        "do not look again now and then",
    )


@long_poll.check("with no news, answers after wait seconds: no events, and the feed's last_id")
async def _gives_up(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    news = seeded_feed(rng, rng.randint(1, 4))
    last = news.last_id
    async with await poll_client(h, endpoint, news) as client:
        answer, took = await ask(client, after=last, wait=0.5, limit=1.5)
        expected = {"events": [], "last_id": last}
        expect(answer == expected, f"?after={last} with no news answered {answer}, not {expected}")
        expect(took >= 0.4, f"with no news and wait=0.5, the answer came after {took:.2f} s")
        # wait=0 is a short poll: no deadline at all would hold it for ever.
        answer, _ = await ask(client, after=last, wait=0, limit=1)
    expect(answer == expected, f"?after={last}&wait=0 answered {answer}, not {expected}")


@long_poll.check("a wait longer than a second is waited out", timeout=6)
async def _long_wait(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    news = seeded_feed(rng, 2)
    wait = round(rng.uniform(1.5, 1.8), 2)
    async with await poll_client(h, endpoint, news) as client:
        # The margin is for a busy machine: an answer due after wait seconds comes within one more.
        answer, took = await ask(client, after=news.last_id, wait=wait, limit=wait + 1)
    expect(not ids(answer), f"with no news, the answer held the events {ids(answer)}")
    expect(
        took >= wait - 0.1,
        f"with no news and wait={wait:g}, the answer came after {took:.2f} s: wait it out",
    )


@long_poll.check("?after= past the feed's last id waits for an id above it; last_id is the feed's")
async def _ahead(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    news = seeded_feed(rng, rng.randint(1, 4))
    last = news.last_id
    # A client that saw ids this feed has not reached (another server's, before a restart).
    after = last + rng.randint(2, 6)
    async with await poll_client(h, endpoint, news) as client:
        waiting = asyncio.ensure_future(ask(client, after=after, wait=1, limit=2))
        await asyncio.sleep(0.3)
        await publish(client, "not after it yet")
        answer, took = await waiting
    expect(
        took >= 0.9,
        f"the feed's last id was {last}; ?after={after}&wait=1 answered after {took:.2f} s, "
        f"with {last + 1} published at 0.3 s: only an id above {after} is news, wait for it",
    )
    expected = {"events": [], "last_id": last + 1}
    expect(
        answer == expected,
        f"the feed's last id was {last}, then {last + 1} was published; ?after={after}&wait=1 "
        f"answered {answer}, not {expected}: last_id is always the feed's",
    )


@long_poll.check("many clients waiting at once all get the next event")
async def _many(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    news = seeded_feed(rng, 3)
    last = news.last_id
    count = rng.randint(8, 12)
    async with await poll_client(h, endpoint, news) as client:
        waiting = [
            asyncio.ensure_future(ask(client, after=last, wait=5, limit=2)) for _ in range(count)
        ]
        # Usually they are all waiting by then; one that is not finds the news at once.
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: news.subscribers >= count, timeout=0.5)
        await publish(client, "for everyone")
        answers = await asyncio.gather(*waiting)
    got = [ids(answer) for answer, _ in answers]
    wrong = [g for g in got if g != [last + 1]]
    expect(not wrong, f"{count} clients waited after {last}; they got {got}")


# --- 01.2 a client that resumes --------------------------------------------------------------

resuming = exercise(
    "01.2",
    "A WebSocket client that resumes",
    target="collect",
    references=(
        "course_server.lab.compare:websocket_client",
        "course_server.clients.reconnecting:ReconnectingClient",
    ),
)

COLLECT_SECONDS = 4


@dataclasses.dataclass
class Flaky:
    """What ``/flaky`` did: the ``?after=`` of each connection, and the events it holds."""

    news: feed.Feed
    connections: list[int] = dataclasses.field(default_factory=list)

    def sent(self, count: int) -> list[dict[str, Any]]:
        """The first ``count`` events, as the server sends them (JSON objects)."""
        return [json.loads(event.model_dump_json()) for event in self.news.after(0)[:count]]


async def serve_flaky(
    h: Harness,
    news: feed.Feed,
    rng: random.Random,
    empty: frozenset[int] = frozenset(),
    quota: int | None = None,
) -> Flaky:
    """``/flaky?after=N``: the events after N, one to four per connection, then a close.

    The closes alternate 1000 (a normal close) and 1001 ("going away", a server shutting down),
    1000 first: a client must reconnect after either, and one that stops on a normal close is
    caught on the first connection, whatever the draw. The connections numbered in ``empty``
    (1 is the first) close before sending anything, as a server still starting up does.

    The server has no other route: a client can only get the events through ``/flaky`` (the
    check publishes on the server's loop, ``publish_on``).
    """
    flaky_feed = Flaky(news)

    async def flaky(websocket: WebSocket, after: int = 0) -> None:
        await websocket.accept()
        flaky_feed.connections.append(after)
        closing_at_once = len(flaky_feed.connections) in empty
        sending = 0 if closing_at_once else quota or rng.randint(1, 4)
        if sending:
            # Feed.subscribe is an async generator, annotated as the AsyncIterator it serves as.
            subscription = cast("AsyncGenerator[feed.Event, None]", news.subscribe(after))
            async with contextlib.aclosing(subscription) as events:
                sent = 0
                async for event in events:
                    await websocket.send_text(event.model_dump_json())
                    sent += 1
                    if sent == sending:
                        break
        await websocket.close(1000 if len(flaky_feed.connections) % 2 else 1001, "going away")

    h.websocket("/flaky", flaky)
    await h.serve()
    return flaky_feed


async def publish_on(h: Harness, news: feed.Feed, *data: str) -> None:
    """Publish on the server's event loop, where the feed's subscribers wait."""
    for item in data:
        await h.on_server(news.publish, item)


async def collected(h: Harness, collect: Any, count: int, flaky: Flaky, why: str = "") -> Any:
    """What ``collect(url, count)`` returns, within a few seconds; ``why`` ends a late hint."""
    assert h.server is not None
    try:
        # Ten events take milliseconds; the margin is for a busy machine, not for the code.
        async with asyncio.timeout(COLLECT_SECONDS):
            return await h.call(collect, h.server.ws("/flaky"), count)
    except TimeoutError:
        raise CheckFailed(
            f"collect(url, {count}) had not returned after {COLLECT_SECONDS} s; it connected "
            f"with ?after= {flaky.connections}{why}"
        ) from None


def verdict_on(got: Any, count: int, flaky: Flaky) -> None:
    """Fail unless ``got`` holds the first ``count`` events' ids, once each, in order."""
    wanted = [event["id"] for event in flaky.sent(count)]
    received: list[Any] = [
        event.get("id") if isinstance(event, dict) else event for event in got or []
    ]
    again = sorted({i for i in received if received.count(i) > 1})
    where = f"(connected with ?after= {flaky.connections})"
    expect(not again, f"events {again} arrived twice {where}")
    expect(received == wanted, f"collected the events {received}, not {wanted} {where}")


def counting_feed(published: int) -> feed.Feed:
    news = feed.Feed()
    for n in range(published):
        news.publish(f"event {n + 1}")
    return news


@resuming.check("collects every event once, in order, across reconnects")
async def _resumes(h: Harness, collect: Any) -> None:
    rng = random.Random()
    count = rng.randint(8, 12)
    flaky = await serve_flaky(h, counting_feed(count), rng)
    verdict_on(await collected(h, collect, count, flaky), count, flaky)


@resuming.check("stops at count")
async def _stops(h: Harness, collect: Any) -> None:
    rng = random.Random()
    # Four events a connection, and a count that ends in the middle of one.
    flaky = await serve_flaky(h, counting_feed(12), rng, quota=4)
    count = rng.choice([3, 5, 6, 7])
    verdict_on(await collected(h, collect, count, flaky), count, flaky)
    nothing = await collected(h, collect, 0, flaky, ": with count 0, return [] at once")
    expect(nothing == [], f"collect(url, 0) returned {str(nothing)[:80]}, not []")


@resuming.check("returns at count, without waiting for the server to close")
async def _returns_at_count(h: Harness, collect: Any) -> None:
    rng = random.Random()
    count = rng.randint(3, 6)
    # One connection sends the count events, then stays open: no more events come.
    flaky = await serve_flaky(h, counting_feed(count), rng, quota=count + 1)
    why = (
        f": it had all {count} events on the first connection, which then stayed open; "
        "return as soon as you have count events, do not wait for the server to close"
    )
    verdict_on(await collected(h, collect, count, flaky, why), count, flaky)


@resuming.check("waits for events that are not published yet")
async def _waits_for_news(h: Harness, collect: Any) -> None:
    rng = random.Random()
    news = counting_feed(2)
    flaky = await serve_flaky(h, news, rng)
    collecting = asyncio.ensure_future(collected(h, collect, 5, flaky))
    # News that comes later, while the client waits: over a second later, for a client that
    # takes a quiet second for the end of the stream.
    await asyncio.sleep(rng.uniform(1.1, 1.4))
    await publish_on(h, news, "event 3", "event 4", "event 5")
    verdict_on(await collecting, 5, flaky)


@resuming.check("resumes after the last id, whatever the ids (not from 1, with gaps)")
async def _any_ids(h: Harness, collect: Any) -> None:
    rng = random.Random()
    flaky = await serve_flaky(h, seeded_feed(rng, 12), rng)
    count = rng.randint(8, 12)
    verdict_on(await collected(h, collect, count, flaky), count, flaky)


@resuming.check("returns the events as dicts, as the server sent them")
async def _as_sent(h: Harness, collect: Any) -> None:
    rng = random.Random()
    flaky = await serve_flaky(h, seeded_feed(rng, 6), rng)
    got = await collected(h, collect, 6, flaky)
    wanted = flaky.sent(6)
    expect(
        isinstance(got, list) and got == wanted,
        f"collect returned {str(got)[:160]}; expected the event objects, e.g. {wanted[0]}",
    )


@resuming.check("a connection that closes before any event is tried again, after the last id")
async def _empty_connection(h: Harness, collect: Any) -> None:
    rng = random.Random()
    # The first and the third connection: the client has events by the third (at most four a
    # connection, at least five wanted), and must still resume after the last of them.
    count = rng.randint(5, 7)
    flaky = await serve_flaky(h, counting_feed(count), rng, empty=frozenset({1, 3}))
    verdict_on(await collected(h, collect, count, flaky), count, flaky)
