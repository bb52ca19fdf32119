"""Checks for lesson 08's exercises: an SSE stream that resumes, and parsing SSE like a browser.

The stream is mounted as FastAPI mounts any SSE path operation (``response_class=
EventSourceResponse``) and read over HTTP; ``sse_client.parse`` (the course's parser) reads the
learner's stream. For the parser exercise it is the other way round: the check's own endpoints
produce the streams, and the learner's parser must read them as ``sse_client.parse`` does.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi.sse import EventSourceResponse, ServerSentEvent

from course_server import sse_client
from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness

# --- 08.1 a stream that resumes --------------------------------------------------------------

squares = exercise(
    "08.1",
    "An SSE stream that resumes after Last-Event-ID",
    target="squares",
    references=("course_server.events:numbered_events", "course_server.events:_paced"),
)


async def read_stream(
    h: Harness, path: str, *, last_event_id: str | None = None
) -> list[sse_client.SSEvent]:
    """GET ``path`` to the end of its stream; the events in it (comments left out)."""
    assert h.server is not None
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with httpx.AsyncClient(timeout=3) as client:
        try:
            response = await client.get(h.server.url(path), headers=headers)
        except httpx.TimeoutException:
            raise CheckFailed(f"GET {path}: the stream did not end within 3 s") from None
    expect(response.status_code == 200, f"GET {path} answered HTTP {response.status_code}")
    return [e for e in sse_client.parse(response.text) if e.comment is None]


async def serve_squares(h: Harness, endpoint: Any) -> None:
    if not inspect.isasyncgenfunction(endpoint):
        await h.call(endpoint)  # a stub, with no yield yet, raises NotImplementedError here
        raise CheckFailed(f"{endpoint.__name__} must yield its events: an async generator")
    h.get("/squares", endpoint, response_class=EventSourceResponse)
    await h.serve()


def listed(events: list[sse_client.SSEvent]) -> str:
    return ", ".join(f"id {e.id} ({e.event})" for e in events) or "no events"


@squares.check("events 1 to count, each named square, with its id and data")
async def _all(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    events = await read_stream(h, "/squares?count=4")
    expect([e.id for e in events] == ["1", "2", "3", "4"], f"?count=4 sent {listed(events)}")
    expect(all(e.event == "square" for e in events), f"event names: {[e.event for e in events]}")
    data = [json.loads(e.data) for e in events]
    expected = [{"n": n, "square": n * n} for n in range(1, 5)]
    expect(data == expected, f"the data was {data}")


@squares.check("only the first event carries retry: 2000")
async def _retry(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    events = await read_stream(h, "/squares?count=3")
    retries = [e.retry for e in events]
    expect(retries == [2000, None, None], f"retry per event: {retries}, not [2000, None, None]")


@squares.check("Last-Event-ID: 3 resumes at 4")
async def _resume(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    events = await read_stream(h, "/squares?count=5", last_event_id="3")
    expect([e.id for e in events] == ["4", "5"], f"after 3, the stream sent {listed(events)}")
    expect(events[0].retry == 2000, "a resumed stream's first event needs retry too")


@squares.check("a client that has seen every event gets none again")
async def _caught_up(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    events = await read_stream(h, "/squares?count=5", last_event_id="5")
    expect(events == [], f"after 5 of 5, the stream sent {listed(events)}")


# --- 08.2 parsing a stream -------------------------------------------------------------------

parser = exercise(
    "08.2",
    "Read an SSE stream as a browser does",
    target="parse_events",
    references=("course_server.sse_client:parse", "course_server.sse_client:SSEParser"),
)

STREAMS: dict[str, list[ServerSentEvent]] = {
    "fields": [
        ServerSentEvent(id="1", event="notification", data={"title": "hi"}),
        ServerSentEvent(id="2", data="plain"),
    ],
    "multiline": [ServerSentEvent(id="1", raw_data="line one\nline two\n\nline four")],
    "comments": [
        ServerSentEvent(comment="ping"),
        ServerSentEvent(id="1", data="after a ping"),
        ServerSentEvent(comment="two\nlines"),
    ],
    "spaces": [ServerSentEvent(raw_data="  two spaces"), ServerSentEvent(raw_data="no space")],
    "ids": [ServerSentEvent(id="7", data="a"), ServerSentEvent(data="b")],
    "nodata": [
        ServerSentEvent(retry=1000),
        ServerSentEvent(event="lonely"),
        ServerSentEvent(data=1),
    ],
}


def browser_view(text: str) -> list[dict[str, str]]:
    """What a browser dispatches, as the exercise asks for it: event, data, id ("" if none)."""
    return [
        {"event": e.event, "data": e.data, "id": e.id or ""}
        for e in sse_client.parse(text)
        if e.comment is None
    ]


async def compare(h: Harness, parse_events: Any, stream: str) -> None:
    """Serve stream ``stream``, read its raw lines, and compare the learner's parse with ours."""

    async def produce() -> AsyncIterator[ServerSentEvent]:
        for event in STREAMS[stream]:
            yield event

    h.get("/stream", produce, response_class=EventSourceResponse)
    server = await h.serve()
    async with httpx.AsyncClient(timeout=3) as client:
        text = (await client.get(server.url("/stream"))).text
    lines = text.splitlines()
    got = await h.call(parse_events, list(lines))
    expected = browser_view(text)
    expect(got == expected, f"for the lines {lines}\nyou returned {got}\nnot {expected}")


@parser.check("reads event, data and id; event defaults to message")
async def _fields(h: Harness, parse_events: Any) -> None:
    await compare(h, parse_events, "fields")


@parser.check("joins the data lines of one event with newlines")
async def _multiline(h: Harness, parse_events: Any) -> None:
    await compare(h, parse_events, "multiline")


@parser.check("skips comments, such as keep-alive pings")
async def _comments(h: Harness, parse_events: Any) -> None:
    await compare(h, parse_events, "comments")


@parser.check("removes one space after the colon, no more")
async def _spaces(h: Harness, parse_events: Any) -> None:
    await compare(h, parse_events, "spaces")


@parser.check("an event without an id keeps the last id seen")
async def _ids(h: Harness, parse_events: Any) -> None:
    await compare(h, parse_events, "ids")


@parser.check("a blank line after no data dispatches nothing")
async def _nodata(h: Harness, parse_events: Any) -> None:
    await compare(h, parse_events, "nodata")
