"""Lesson 01's feed (``course_server.lessons.feed``): the ``Feed`` itself, then its three ways out.

The feed lives on the server's event loop, so tests against the real server reach it through
``server.call`` (run in a thread, to keep the test's own loop free).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from conftest import wait_timeout
from fastapi.testclient import TestClient
from websockets.asyncio.client import connect

from course_server import RunningServer
from course_server.lab.compare import sse_data
from course_server.lessons.feed import Event, Feed

pytestmark = pytest.mark.anyio


async def on_server(server: RunningServer, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on the server's loop without blocking this one."""
    return await asyncio.to_thread(server.call, coro, wait_timeout())


def feed_of(server: RunningServer) -> Feed:
    return server.app.state.feed


# Feed


async def test_publish_stamps_consecutive_ids_and_the_time() -> None:
    feed = Feed()
    first, second = feed.publish("a"), feed.publish({"b": 2})
    assert (first.id, second.id) == (1, 2)
    assert first.published_at <= second.published_at
    assert second.data == {"b": 2}
    assert feed.last_id == 2


async def test_after_returns_only_newer_events_oldest_first() -> None:
    feed = Feed()
    for n in range(5):
        feed.publish(n)
    assert [e.id for e in feed.after(2)] == [3, 4, 5]
    assert feed.after(5) == []


async def test_history_keeps_only_the_newest_events() -> None:
    feed = Feed(history_size=3)
    for n in range(5):
        feed.publish(n)
    assert [e.id for e in feed.after(0)] == [3, 4, 5]


async def test_subscribe_yields_history_then_each_new_event() -> None:
    feed = Feed()
    feed.publish("old")
    events = feed.subscribe(after=0)
    async with asyncio.timeout(wait_timeout()):
        assert (await anext(events)).data == "old"
        # Runs only once the subscriber is blocked waiting: it must be woken, not find the event.
        asyncio.get_running_loop().call_soon(feed.publish, "new")
        assert (await anext(events)).data == "new"
    await events.aclose()


async def test_subscriber_count_returns_to_zero_when_a_subscription_ends() -> None:
    feed = Feed()
    feed.publish("x")
    events = feed.subscribe()
    await anext(events)
    assert feed.subscribers == 1
    await events.aclose()
    assert feed.subscribers == 0
    async with asyncio.timeout(wait_timeout()):
        await feed.wait_idle()


async def test_close_ends_a_waiting_subscription() -> None:
    feed = Feed()
    events = feed.subscribe()
    asyncio.get_running_loop().call_soon(feed.close)
    async with asyncio.timeout(wait_timeout()):
        assert [e async for e in events] == []
    assert feed.subscribers == 0


async def test_append_keeps_an_event_stamped_elsewhere_and_publish_goes_on_from_it() -> None:
    feed = Feed()
    feed.append(Event(id=7, published_at=1.0, data="from Redis"))
    assert feed.last_id == 7
    assert feed.publish("next").id == 8


async def test_after_finds_the_newer_events_across_gaps_in_the_ids() -> None:
    feed = Feed()
    for event_id in (2, 3, 7, 8, 12):
        feed.append(Event(id=event_id, published_at=0.0, data=event_id))
    assert [e.id for e in feed.after(0)] == [2, 3, 7, 8, 12]
    assert [e.id for e in feed.after(3)] == [7, 8, 12]
    assert [e.id for e in feed.after(5)] == [7, 8, 12]
    assert feed.after(12) == []


async def test_append_wakes_a_waiting_subscriber() -> None:
    feed = Feed()
    events = feed.subscribe()
    asyncio.get_running_loop().call_soon(feed.append, Event(id=5, published_at=0.0, data="x"))
    async with asyncio.timeout(wait_timeout()):
        assert (await anext(events)).id == 5
    await events.aclose()


# POST /feed/publish and GET /feed/poll


def test_publish_endpoint_returns_the_event(client: TestClient) -> None:
    reply = client.post("/feed/publish", json={"data": {"text": "hi"}})
    assert reply.status_code == 200
    event = reply.json()
    assert (event["id"], event["data"]) == (1, {"text": "hi"})
    assert isinstance(event["published_at"], float)


def test_publish_without_data_is_refused(client: TestClient) -> None:
    assert client.post("/feed/publish", json={"text": "hi"}).status_code == 422


def test_poll_with_nothing_new_answers_at_once_with_no_events(client: TestClient) -> None:
    assert client.get("/feed/poll").json() == {"events": [], "last_id": 0}


def test_poll_returns_the_events_after_the_given_id(client: TestClient) -> None:
    for n in range(3):
        client.post("/feed/publish", json={"data": n})
    reply = client.get("/feed/poll", params={"after": 1}).json()
    assert [e["data"] for e in reply["events"]] == [1, 2]
    assert reply["last_id"] == 3


def test_poll_refuses_a_negative_id(client: TestClient) -> None:
    assert client.get("/feed/poll", params={"after": -1}).status_code == 422


# WS /feed/ws


def test_websocket_sends_history_after_the_given_id(client: TestClient) -> None:
    for n in range(3):
        client.post("/feed/publish", json={"data": n})
    with client.websocket_connect("/feed/ws?after=1") as websocket:
        assert [websocket.receive_json()["id"] for _ in range(2)] == [2, 3]


async def test_websocket_pushes_each_new_event_as_a_json_text_frame(
    server: RunningServer,
) -> None:
    async with (
        asyncio.timeout(wait_timeout()),
        httpx.AsyncClient(base_url=server.http_url) as http,
        connect(server.ws("/feed/ws")) as websocket,
    ):
        published = (await http.post("/feed/publish", json={"data": "pushed"})).json()
        frame = await websocket.recv()
        assert isinstance(frame, str)
        assert json.loads(frame) == published


async def test_websocket_subscription_ends_when_the_client_leaves_an_idle_feed(
    server: RunningServer,
) -> None:
    async with (
        asyncio.timeout(wait_timeout()),
        httpx.AsyncClient(base_url=server.http_url) as http,
        connect(server.ws("/feed/ws")) as websocket,
    ):
        await http.post("/feed/publish", json={"data": "only"})
        await websocket.recv()  # the server is subscribed; from now on the feed stays idle
    await on_server(server, feed_of(server).wait_idle())
    assert feed_of(server).subscribers == 0


# GET /feed/sse


async def first_sse_event(response: httpx.Response) -> dict[str, str]:
    """The fields of the first event in ``response`` (``id``, ``data``, …)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            return fields
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended before one event")


async def test_sse_event_carries_the_feed_id_and_the_event_as_json(server: RunningServer) -> None:
    async with asyncio.timeout(wait_timeout()), httpx.AsyncClient(base_url=server.http_url) as http:
        published = (await http.post("/feed/publish", json={"data": "streamed"})).json()
        async with http.stream("GET", "/feed/sse") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            fields = await first_sse_event(response)
    assert fields["id"] == str(published["id"])
    assert json.loads(fields["data"]) == published


async def test_sse_resumes_after_last_event_id_which_wins_over_after(
    server: RunningServer,
) -> None:
    async with asyncio.timeout(wait_timeout()), httpx.AsyncClient(base_url=server.http_url) as http:
        for n in range(3):
            await http.post("/feed/publish", json={"data": n})
        headers = {"Last-Event-ID": "2"}
        async with http.stream("GET", "/feed/sse?after=0", headers=headers) as response:
            fields = await first_sse_event(response)
    assert fields["id"] == "3"


async def test_sse_generator_ends_when_the_client_leaves_an_idle_feed(
    server: RunningServer,
) -> None:
    async with (
        asyncio.timeout(wait_timeout()),
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        await http.post("/feed/publish", json={"data": "only"})
        async with http.stream("GET", "/feed/sse") as response:
            await first_sse_event(response)  # subscribed; from now on the feed stays idle
    await on_server(server, feed_of(server).wait_idle())
    assert feed_of(server).subscribers == 0


async def test_sse_data_parser_joins_multiline_data_and_skips_other_fields() -> None:
    async def lines() -> Any:
        for line in [": ping", "", "id: 1", "data: a", "data: b", "", "data: c", ""]:
            yield line

    assert [d async for d in sse_data(lines())] == ["a\nb", "c"]
