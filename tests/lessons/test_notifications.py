"""Lesson 08's notifications stream: publish over HTTP, receive over SSE, resume by id."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from conftest import eventually, wait_timeout
from credentials import bearer
from fastapi.testclient import TestClient

from course_server import RunningServer
from course_server.clients.sse import SSEParser, SSEvent
from course_server.lessons.events import RECONNECT_MS
from course_server.lessons.notifications import InProcess

pytestmark = pytest.mark.anyio


async def _read_events(response: httpx.Response, n: int) -> list[SSEvent]:
    """Read events from a streaming response until ``n`` have arrived."""
    parser = SSEParser()
    events: list[SSEvent] = []
    async with asyncio.timeout(wait_timeout()):
        async for line in response.aiter_lines():
            event = parser.feed(line)
            if event is not None and event.comment is None:
                events.append(event)
                if len(events) == n:
                    return events
    raise AssertionError(f"stream ended after {len(events)} of {n} events")


async def _publish(client: httpx.AsyncClient, server: RunningServer, title: str) -> int:
    url = server.url("/notifications")
    response = await client.post(url, json={"title": title}, headers=bearer(server.app))
    assert response.status_code == 201
    return response.json()["id"]


async def _subscribers(server: RunningServer) -> int:
    async def count() -> int:
        return server.app.state.notifications.subscribers

    return await asyncio.to_thread(server.call, count())


async def test_every_subscriber_receives_each_notification(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        url = server.url("/notifications/stream")
        async with client.stream("GET", url) as first, client.stream("GET", url) as second:

            async def both_subscribed() -> bool:
                return await _subscribers(server) == 2

            await eventually(both_subscribed)
            await _publish(client, server, "deploy finished")
            for response in (first, second):
                (event,) = await _read_events(response, 1)
                assert event.event == "notification"
                assert json.loads(event.data) == {"title": "deploy finished", "body": ""}


async def test_last_event_id_gets_exactly_what_was_missed(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        ids = [await _publish(client, server, f"n{i}") for i in range(5)]
        headers = {"Last-Event-ID": str(ids[1])}
        async with client.stream("GET", server.url("/notifications/stream"), headers=headers) as r:
            events = await _read_events(r, 3)
    assert [int(e.id or 0) for e in events] == ids[2:]
    assert [json.loads(e.data)["title"] for e in events] == ["n2", "n3", "n4"]


async def test_a_new_subscriber_starts_with_the_next_notification(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        await _publish(client, server, "old news")
        async with client.stream("GET", server.url("/notifications/stream")) as response:

            async def subscribed() -> bool:
                return await _subscribers(server) == 1

            await eventually(subscribed)
            await _publish(client, server, "fresh")
            (event,) = await _read_events(response, 1)
    assert json.loads(event.data)["title"] == "fresh"


async def test_the_stream_sends_its_retry_before_any_notification(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        async with client.stream("GET", server.url("/notifications/stream")) as response:
            async with asyncio.timeout(wait_timeout()):
                lines = response.aiter_lines()
                opening = [await anext(lines), await anext(lines)]
    assert opening == [f"retry: {RECONNECT_MS}", ""]


async def test_leaving_releases_the_subscription(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        async with client.stream("GET", server.url("/notifications/stream")):

            async def subscribed() -> bool:
                return await _subscribers(server) == 1

            await eventually(subscribed)

    async def released() -> bool:
        return await _subscribers(server) == 0

    await eventually(released)


async def test_an_empty_title_is_refused(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        response = await client.post(
            server.url("/notifications"), json={"title": ""}, headers=bearer(server.app)
        )
    assert response.status_code == 422


def test_without_redis_the_processs_own_feed_gives_the_ids(client: TestClient) -> None:
    assert isinstance(client.app.state.notifier, InProcess)
    reply = client.post("/notifications", json={"title": "local"}, headers=bearer(client.app))
    assert reply.status_code == 201
    assert reply.json()["id"] == client.app.state.notifications.last_id == 1
