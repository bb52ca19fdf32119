"""Checks for lesson 01's exercises: long polling, and a WebSocket client that resumes.

Both run against lesson 01's ``Feed`` on a fresh app (``app.state.feed``, with ``feed.router``
for ``POST /feed/publish``). The resuming client meets an endpoint that drops every connection
after a few events, closing it with 1001 as a server going down does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
from fastapi import WebSocket

from course_server import feed
from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness

# --- 01.1 long polling -----------------------------------------------------------------------

long_poll = exercise(
    "01.1", "Long polling", target="long_poll", references=("course_server.feed:poll",)
)


async def serve_feed(h: Harness) -> feed.Feed:
    news = feed.Feed()
    h.app.state.feed = news
    h.app.include_router(feed.router)
    await h.serve()
    return news


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


async def poll_client(h: Harness, endpoint: Any) -> httpx.AsyncClient:
    """Serve the learner's endpoint at ``/feed/longpoll`` beside the feed; a client for it."""
    h.get("/feed/longpoll", endpoint)
    await serve_feed(h)
    assert h.server is not None
    return httpx.AsyncClient(base_url=h.server.http_url, timeout=3)


@long_poll.check("answers at once when there is news")
async def _news(h: Harness, endpoint: Any) -> None:
    async with await poll_client(h, endpoint) as client:
        await publish(client, "one", "two")
        answer, took = await ask(client, after=0, wait=5)
    expect(ids(answer) == [1, 2], f"?after=0 returned the events {ids(answer)}, not [1, 2]")
    expect(answer.get("last_id") == 2, f"last_id was {answer.get('last_id')}, not 2")
    expect(took < 1, f"with news waiting, the answer took {took:.1f} s")


@long_poll.check("waits for the next event, and answers as soon as it comes")
async def _waits(h: Harness, endpoint: Any) -> None:
    async with await poll_client(h, endpoint) as client:
        await publish(client, "one")
        waiting = asyncio.ensure_future(ask(client, after=1, wait=5, limit=1.5))
        await asyncio.sleep(0.3)  # the news comes a while after the question: that is the point
        await publish(client, "two")
        answer, took = await waiting
    expect(ids(answer) == [2], f"?after=1 returned {ids(answer)}: wait for the next event")
    expect(took < 1.5, f"the answer came {took - 0.3:.1f} s after the event: wake up at once")


@long_poll.check("gives up after wait seconds with an empty answer")
async def _gives_up(h: Harness, endpoint: Any) -> None:
    async with await poll_client(h, endpoint) as client:
        answer, took = await ask(client, after=0, wait=0.5)
    expect(answer == {"events": [], "last_id": 0}, f"with no news, the answer was {answer}")
    expect(took >= 0.4, f"with no news and wait=0.5, the answer came after {took:.2f} s")


# --- 01.2 a client that resumes --------------------------------------------------------------

resuming = exercise(
    "01.2",
    "A WebSocket client that resumes",
    target="collect",
    references=(
        "course_server.compare:websocket_client",
        "course_server.reconnecting:ReconnectingClient",
    ),
)

PER_CONNECTION = 3
COLLECT_SECONDS = 4


async def serve_flaky(h: Harness, published: int) -> tuple[feed.Feed, list[int]]:
    """``/flaky?after=N``: the events after N, at most three per connection, then 1001."""
    news = feed.Feed()
    for n in range(published):
        news.publish(f"event {n + 1}")
    connections: list[int] = []

    async def flaky(websocket: WebSocket, after: int = 0) -> None:
        await websocket.accept()
        connections.append(after)
        async with contextlib.aclosing(news.subscribe(after)) as events:
            sent = 0
            async for event in events:
                await websocket.send_text(event.model_dump_json())
                sent += 1
                if sent == PER_CONNECTION:
                    break
        await websocket.close(1001, "going away")

    h.websocket("/flaky", flaky)
    h.app.state.feed = news
    h.app.include_router(feed.router)
    await h.serve()
    return news, connections


async def collected(h: Harness, collect: Any, count: int, connections: list[int]) -> Any:
    """What ``collect(url, count)`` returns, within a few seconds."""
    assert h.server is not None
    try:
        # Ten events take milliseconds; the margin is for a busy machine, not for the code.
        async with asyncio.timeout(COLLECT_SECONDS):
            return await h.call(collect, h.server.ws("/flaky"), count)
    except TimeoutError:
        raise CheckFailed(
            f"collect(url, {count}) had not returned after {COLLECT_SECONDS} s; it connected "
            f"with ?after= {connections}"
        ) from None


def verdict_on(got: Any, count: int, connections: list[int]) -> None:
    received = [event.get("id") if isinstance(event, dict) else event for event in got or []]
    again = sorted({i for i in received if received.count(i) > 1})
    expect(not again, f"events {again} arrived twice (connected with ?after= {connections})")
    expect(
        received == list(range(1, count + 1)),
        f"collected the events {received}, not 1 to {count} (connected with ?after= {connections})",
    )


@resuming.check("collects every event once, in order, across reconnects")
async def _resumes(h: Harness, collect: Any) -> None:
    _, connections = await serve_flaky(h, published=10)
    verdict_on(await collected(h, collect, 10, connections), 10, connections)


@resuming.check("stops at count")
async def _stops(h: Harness, collect: Any) -> None:
    _, connections = await serve_flaky(h, published=10)
    verdict_on(await collected(h, collect, 4, connections), 4, connections)


@resuming.check("waits for events that are not published yet")
async def _waits_for_news(h: Harness, collect: Any) -> None:
    _, connections = await serve_flaky(h, published=2)
    assert h.server is not None
    collecting = asyncio.ensure_future(collected(h, collect, 5, connections))
    async with httpx.AsyncClient(base_url=h.server.http_url, timeout=3) as client:
        await asyncio.sleep(0.2)  # news that comes later, while the client waits
        await publish(client, "event 3", "event 4", "event 5")
    verdict_on(await collecting, 5, connections)
