"""Lesson 08's notifications through Redis: published on one process, received on every one.

Two servers ("A" and "B") run in threads of this test process, each with its own event loop and
its own Redis connections, so all they share is what Redis holds (as in ``test_redis_chat.py``).
Redis runs without persistence: stopping it loses every key, as a crash would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import httpx
import pytest
import redis
from conftest import eventually, wait_timeout
from credentials import bearer
from redis_fixtures import SECRET

from course_server import RunningServer, Settings, start
from course_server.clients.sse import SSEvent, events, take
from course_server.lessons.feed import Event, Feed
from course_server.scaling.feed import RedisFeed
from course_server.scaling.link import RedisLink
from course_server.tools.redis_server import RedisServer

pytestmark = pytest.mark.anyio

MORE_SUBSCRIBERS = 8
POOL_SLACK = 2  # connections a busy pool may add for overlapping commands


@pytest.fixture(scope="module")
def settings(redis_server: RedisServer) -> Settings:
    return Settings(jwt_secret=SECRET, redis_url=redis_server.url)


@pytest.fixture(scope="module")
def servers(settings: Settings) -> Iterator[tuple[RunningServer, RunningServer]]:
    a = start(name="test-notify-a", settings=settings)
    b = start(name="test-notify-b", settings=settings)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(autouse=True)
async def settled(
    redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]
) -> AsyncIterator[None]:
    """After each test: Redis up again, both readers connected, nobody subscribed."""
    yield
    await asyncio.to_thread(redis_server.start)
    for server in servers:
        connected = notifier(server).connected
        await on_server(server, connected.wait(), timeout=10)

        async def released(server: RunningServer = server) -> bool:
            return await subscribers(server) == 0

        await eventually(released)


def notifier(server: RunningServer) -> RedisFeed:
    return server.app.state.notifier


async def on_server(
    server: RunningServer, coro: Coroutine[Any, Any, Any], timeout: float = 5.0
) -> Any:
    """Run ``coro`` on the server's loop without blocking this one."""
    return await asyncio.to_thread(server.call, coro, wait_timeout(timeout))


async def subscribers(server: RunningServer) -> int:
    async def count() -> int:
        return server.app.state.notifications.subscribers

    return await on_server(server, count())


async def publish(http: httpx.AsyncClient, server: RunningServer, title: str) -> int:
    url = server.url("/notifications")
    response = await http.post(url, json={"title": title}, headers=bearer(server.app))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def titles(received: list[SSEvent]) -> list[tuple[int, str]]:
    return [(int(event.id or 0), json.loads(event.data)["title"]) for event in received]


def redis_clients(url: str, name: str) -> int:
    """How many connections Redis has from the client called ``name``."""
    with redis.Redis.from_url(url, decode_responses=True) as admin:
        return sum(client["name"] == name for client in admin.client_list())


@contextlib.asynccontextmanager
async def subscribed(
    http: httpx.AsyncClient, server: RunningServer, **options: Any
) -> AsyncIterator[asyncio.Queue[SSEvent]]:
    """The notifications of one stream from ``server``, once the server counts its subscriber."""
    before = await subscribers(server)
    received: asyncio.Queue[SSEvent] = asyncio.Queue()

    async def listen() -> None:
        async for event in events(http, server.url("/notifications/stream"), **options):
            if event.comment is None:
                received.put_nowait(event)

    listener = asyncio.create_task(listen())

    async def counted() -> bool:
        if listener.done():
            listener.result()  # raise what ended it
        return await subscribers(server) > before

    try:
        await eventually(counted)
        yield received
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def read(received: asyncio.Queue[SSEvent], n: int) -> list[SSEvent]:
    async with asyncio.timeout(wait_timeout(10)):
        return [await received.get() for _ in range(n)]


async def test_a_notification_published_on_one_process_reaches_subscribers_on_both(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        async with subscribed(http, a) as on_a, subscribed(http, b) as on_b:
            event_id = await publish(http, a, "deploy finished")
            for stream in (on_a, on_b):
                [event] = await read(stream, 1)
                assert (event.event, event.id) == ("notification", str(event_id))
                assert json.loads(event.data) == {"title": "deploy finished", "body": ""}


async def test_ids_are_one_increasing_sequence_whichever_process_publishes(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        ids = [await publish(http, (a, b)[n % 2], f"n{n}") for n in range(6)]
    assert ids == list(range(ids[0], ids[0] + 6))
    expected = [(event_id, f"n{n}") for n, event_id in enumerate(ids)]
    for server in (a, b):
        url = server.url("/notifications/stream")
        received = await take(url, 6, last_event_id=str(ids[0] - 1), timeout=wait_timeout(10))
        assert titles(received) == expected


async def test_last_event_id_on_the_other_process_gets_exactly_what_was_missed(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        ids = [await publish(http, a, f"m{n}") for n in range(5)]
        async with subscribed(http, b, last_event_id=str(ids[1])) as on_b:
            missed = await read(on_b, 3)
            assert titles(missed) == [(ids[2], "m2"), (ids[3], "m3"), (ids[4], "m4")]
            next_id = await publish(http, a, "live")
            assert titles(await read(on_b, 1)) == [(next_id, "live")]  # then it goes on live


async def test_a_process_started_later_loads_the_history_and_serves_resume(
    servers: tuple[RunningServer, RunningServer], settings: Settings
) -> None:
    a, _ = servers
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        ids = [await publish(http, a, f"early {n}") for n in range(3)]
    late = await asyncio.to_thread(start, name="test-notify-late", settings=settings)
    try:
        assert late.app.state.notifications.last_id == ids[-1]  # loaded before it served
        url = late.url("/notifications/stream")
        received = await take(url, 2, last_event_id=str(ids[0]), timeout=wait_timeout(10))
        assert titles(received) == [(ids[1], "early 1"), (ids[2], "early 2")]
    finally:
        await asyncio.to_thread(late.stop)


async def test_while_redis_is_down_publish_answers_503_and_afterwards_nothing_is_lost(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer
) -> None:
    a, b = servers
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        before = await publish(http, a, "before")
        async with subscribed(http, b, last_event_id=str(before - 1)) as on_b:
            assert titles(await read(on_b, 1)) == [(before, "before")]
            await asyncio.to_thread(redis_server.stop)
            refused = await http.post(
                a.url("/notifications"), json={"title": "lost?"}, headers=bearer(a.app)
            )
            assert refused.status_code == 503
            assert "cannot reach Redis" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "1"

            await asyncio.to_thread(redis_server.start)  # empty: Redis kept nothing
            after = await publish(http, a, "after")
            assert after == before + 1  # the refused one took no id; ids did not start over
            assert titles(await read(on_b, 1)) == [(after, "after")]
        resumed = await take(
            b.url("/notifications/stream"), 1, last_event_id=str(before), timeout=wait_timeout()
        )
        assert titles(resumed) == [(after, "after")]


async def test_subscribers_that_leave_leave_nothing_behind_and_cost_redis_nothing(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer
) -> None:
    a, b = servers
    name = notifier(b).name

    async def readers() -> int:
        tasks = asyncio.all_tasks()
        return sum(task.get_name() == "notifications reader" for task in tasks)

    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        async with contextlib.AsyncExitStack() as stack:
            # One stream that has read a notification: b's reader and pool are connected now.
            first = await stack.enter_async_context(subscribed(http, b))
            await publish(http, a, "warm")
            await read(first, 1)
            connections = redis_clients(redis_server.url, name)
            for _ in range(MORE_SUBSCRIBERS):
                await stack.enter_async_context(subscribed(http, b))
            assert await subscribers(b) == 1 + MORE_SUBSCRIBERS
            # b's pool may open a connection when two commands overlap (a heartbeat during the
            # blocking XREAD), whoever subscribed; one per subscriber would add MORE_SUBSCRIBERS.
            grown = redis_clients(redis_server.url, name) - connections
            assert grown <= POOL_SLACK < MORE_SUBSCRIBERS

    async def released() -> bool:
        return await subscribers(b) == 0 and b.app.state.sse_streams.active == 0

    await eventually(released)
    assert await on_server(b, readers()) == 1


async def test_a_stopped_process_closes_its_redis_connections(
    settings: Settings, redis_server: RedisServer
) -> None:
    extra = await asyncio.to_thread(start, name="test-notify-stopped", settings=settings)
    name = notifier(extra).name
    assert redis_clients(redis_server.url, name) >= 1
    await asyncio.to_thread(extra.stop)
    await eventually(lambda: redis_clients(redis_server.url, name) == 0)


async def test_a_notifier_restarted_on_a_new_loop_reads_on_from_where_its_feed_left_off(
    servers: tuple[RunningServer, RunningServer], redis_server: RedisServer
) -> None:
    a, _ = servers
    feed = Feed()
    link = RedisLink(redis_server.url)
    restarted = RedisFeed(link, feed)

    async def serve_until(event_id: int) -> Event:
        """Serve once, on a loop of its own, until the feed has ``event_id``."""
        async with link, restarted, asyncio.timeout(wait_timeout()):
            async with contextlib.aclosing(feed.subscribe(event_id - 1)) as news:
                return await anext(news)

    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        first = await publish(http, a, "while it runs")
        assert (await asyncio.to_thread(asyncio.run, serve_until(first))).id == first
        second = await publish(http, a, "while it is stopped")
        assert (await asyncio.to_thread(asyncio.run, serve_until(second))).id == second
    assert [(e.id, e.data) for e in feed.after(first - 1)] == [
        (first, {"title": "while it runs", "body": ""}),
        (second, {"title": "while it is stopped", "body": ""}),
    ]
