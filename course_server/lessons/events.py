"""Lesson 08, Server-Sent Events with FastAPI's own SSE support.

Path operations that *yield* with ``response_class=EventSourceResponse`` are encoded by FastAPI
itself: ``id:``, ``event:``, ``data:`` (JSON), ``retry:`` and comment lines, plus the headers that
stop proxies from buffering (``Cache-Control: no-cache``, ``X-Accel-Buffering: no``). Nothing here
formats SSE by hand.

Resume: a browser's ``EventSource`` reconnects on its own and sends the last ``id:`` it saw as the
``Last-Event-ID`` header; each stream below starts right after it.

Disconnects: when the client goes away, the response is cancelled, which raises
``CancelledError`` at the generator's ``await``; the ``finally`` blocks run, so nothing leaks.
``app.state.sse_streams`` (a ``StreamCounter``, made by ``create_app``) counts the generators
alive, so tests and the lesson can check that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

router = APIRouter(tags=["lesson 08: server-sent events"])

RECONNECT_MS = 1000
"""Sent as ``retry:`` on a stream's first event: how long a browser waits before reconnecting."""

Interval = Annotated[float, Query(ge=0.01, le=60, description="seconds between events")]
Count = Annotated[int | None, Query(ge=1, description="stop after this many events")]
LastEventId = Annotated[int | None, Header(ge=0, description="resume after this id")]


class StreamCounter:
    """How many SSE generators are running right now (a leak shows up as a number that grows)."""

    def __init__(self) -> None:
        self.active = 0
        self.finished = 0


@contextmanager
def tracked(request: Request) -> Iterator[None]:
    """Count this generator in the app's ``StreamCounter`` while it runs."""
    counter: StreamCounter = request.app.state.sse_streams
    counter.active += 1
    try:
        yield
    finally:
        counter.active -= 1
        counter.finished += 1


async def _paced(
    last_event_id: int | None, interval: float, count: int | None
) -> AsyncIterator[int]:
    """Ids after ``last_event_id``, one per ``interval`` seconds; ``count`` of them, or forever."""
    n = (last_event_id or 0) + 1
    end = None if count is None else n + count
    while end is None or n < end:
        yield n
        n += 1
        if end is None or n < end:
            await asyncio.sleep(interval)  # the stream's pace, not a wait for readiness


@router.get("/events", response_class=EventSourceResponse)
async def numbered_events(
    request: Request,
    interval: Interval = 1.0,
    count: Count = None,
    last_event_id: LastEventId = None,
) -> AsyncIterator[ServerSentEvent]:
    """Event N carries ``id: N`` and data ``"Event N"``; ``Last-Event-ID: N`` resumes at N+1."""
    with tracked(request):
        async for n in _paced(last_event_id, interval, count):
            first = n == (last_event_id or 0) + 1
            yield ServerSentEvent(
                id=str(n), data=f"Event {n}", retry=RECONNECT_MS if first else None
            )


class Notification(BaseModel):
    message: str
    n: int


class Update(BaseModel):
    count: int


@router.get("/events/typed", response_class=EventSourceResponse)
async def typed_events(
    request: Request,
    interval: Interval = 1.0,
    count: Count = None,
    last_event_id: LastEventId = None,
) -> AsyncIterator[ServerSentEvent]:
    """Named events, alternating: ``notification`` (odd ids) and ``update`` (even ids), JSON data.

    A browser listens with ``addEventListener("notification", …)``; ``onmessage`` sees neither.
    """
    with tracked(request):
        async for n in _paced(last_event_id, interval, count):
            if n % 2:
                data: BaseModel = Notification(message="You have a new message", n=n)
                yield ServerSentEvent(id=str(n), event="notification", data=data)
            else:
                yield ServerSentEvent(id=str(n), event="update", data=Update(count=n))
