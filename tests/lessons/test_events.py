"""Lesson 08's SSE endpoints: numbered and typed events, resume, limits, disconnect cleanup."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from conftest import eventually, wait_timeout
from fastapi.testclient import TestClient

from course_server import RunningServer, Settings, create_app
from course_server.clients.sse import parse
from course_server.lessons.events import StreamCounter

pytestmark = pytest.mark.anyio


async def test_events_are_numbered_with_ids_and_json_data(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        response = await client.get(server.url("/events"), params={"interval": 0.01, "count": 3})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse(response.text)
    assert [e.id for e in events] == ["1", "2", "3"]
    assert [json.loads(e.data) for e in events] == ["Event 1", "Event 2", "Event 3"]


async def test_first_event_tells_the_browser_when_to_reconnect(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        response = await client.get(server.url("/events"), params={"interval": 0.01, "count": 2})
    first, second = parse(response.text)
    assert first.retry == 1000
    assert second.retry is None


async def test_last_event_id_resumes_after_it(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        response = await client.get(
            server.url("/events"),
            params={"interval": 0.01, "count": 2},
            headers={"Last-Event-ID": "41"},
        )
    assert [e.id for e in parse(response.text)] == ["42", "43"]


async def test_headers_stop_proxies_from_buffering(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        response = await client.get(server.url("/events"), params={"interval": 0.01, "count": 1})
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"


@pytest.mark.parametrize("interval", ["0.001", "61", "-1", "soon"])
def test_interval_outside_the_allowed_range_is_refused(client: TestClient, interval: str) -> None:
    assert client.get("/events", params={"interval": interval}).status_code == 422


def test_create_app_makes_the_stream_counter(settings: Settings) -> None:
    """Counted from the first stream on: no route attaches it later."""
    streams = create_app(settings).state.sse_streams
    assert isinstance(streams, StreamCounter)
    assert (streams.active, streams.finished) == (0, 0)


def test_a_malformed_last_event_id_is_refused(client: TestClient) -> None:
    response = client.get("/events", params={"count": 1}, headers={"Last-Event-ID": "x"})
    assert response.status_code == 422


async def test_typed_events_alternate_notification_and_update(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        response = await client.get(
            server.url("/events/typed"), params={"interval": 0.01, "count": 3}
        )
    events = parse(response.text)
    assert [(e.event, e.id) for e in events] == [
        ("notification", "1"),
        ("update", "2"),
        ("notification", "3"),
    ]
    assert json.loads(events[0].data) == {"message": "You have a new message", "n": 1}
    assert json.loads(events[1].data) == {"count": 2}


async def test_a_client_that_leaves_ends_its_generator(server: RunningServer) -> None:
    """An endless stream: the generator must end when the client goes, not linger forever."""

    async def active() -> int:
        streams: StreamCounter = server.app.state.sse_streams
        return streams.active

    async with httpx.AsyncClient(timeout=wait_timeout()) as client:
        async with client.stream("GET", server.url("/events"), params={"interval": 0.05}) as r:
            async for line in r.aiter_lines():
                if line.startswith("data"):
                    break
            assert await asyncio.to_thread(server.call, active()) == 1

    async def released() -> bool:
        return await asyncio.to_thread(server.call, active()) == 0

    await eventually(released)
