"""Lesson 01, polling vs WebSockets: one stream of events, served three ways.

The same ``Feed`` answers short polling (``GET /feed/poll``), pushes over a WebSocket
(``WS /feed/ws``) and streams Server-Sent Events (``GET /feed/sse``), so lesson 01 can compare the
three on equal terms. ``POST /feed/publish`` adds an event. The app keeps its one feed on
``app.state.feed``.

Every event carries an id (1, 2, 3, … per feed) and the server's publication time, so a client can
ask for "everything after N" and can measure how late each event reached it. Memory is bounded:
the feed keeps its last ``history_size`` events, and subscribers share that history instead of
each holding a queue of their own.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, JsonValue
from starlette.requests import HTTPConnection

router = APIRouter(prefix="/feed", tags=["lesson 01: feed"])


class Event(BaseModel):
    """One published event: its id in the feed, the server's ``time.time()`` then, the payload."""

    id: int
    published_at: float
    data: JsonValue


class Publish(BaseModel):
    """Body of ``POST /feed/publish``."""

    data: JsonValue


class Poll(BaseModel):
    """Answer to a poll: the events after the client's id, and the newest id the feed has."""

    events: list[Event]
    last_id: int


class Feed:
    """An append-only stream of events with a bounded history and any number of subscribers."""

    def __init__(self, history_size: int = 1000) -> None:
        self._history: deque[Event] = deque(maxlen=history_size)
        self.history_size = history_size
        # Set once, at the next publish, then replaced: one wake-up call for every subscriber.
        self._published = asyncio.Event()
        self.last_id = 0
        self.closed = False
        self.subscribers = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def publish(self, data: JsonValue) -> Event:
        """Stamp ``data`` with the next id and the current time, keep it, wake the subscribers."""
        return self.append(Event(id=self.last_id + 1, published_at=time.time(), data=data))

    def append(self, event: Event) -> Event:
        """Keep an event stamped elsewhere (lesson 08: by Redis) and wake the subscribers.

        Its id must be above ``last_id``, but need not be the next one: a gap is what was lost.
        """
        self._history.append(event)
        self.last_id = event.id
        self._published.set()
        self._published = asyncio.Event()
        return event

    def after(self, event_id: int) -> list[Event]:
        """The events still in history with an id greater than ``event_id``, oldest first."""
        if not self._history or event_id >= self.last_id:
            return []
        # History is in id order: a binary search finds the first wanted event.
        start = bisect.bisect_right(self._history, event_id, key=lambda event: event.id)
        return list(itertools.islice(self._history, start, None))

    async def subscribe(self, after: int = 0) -> AsyncIterator[Event]:
        """Every event after id ``after``, forever: history first, then each new one as it comes.

        A subscriber that falls more than the history size behind skips what was dropped; it can
        tell from the gap in the ids.
        """
        self.subscribers += 1
        self._idle.clear()
        try:
            seen = after
            while not self.closed:
                events = self.after(seen)
                if not events:
                    await self._published.wait()
                    continue
                for event in events:
                    yield event
                    seen = event.id
        finally:
            self.subscribers -= 1
            if not self.subscribers:
                self._idle.set()

    def close(self) -> None:
        """End every subscription (now, or after the events it is sending), e.g. at shutdown.

        A server waits for open responses before it stops, and an SSE response never ends by
        itself: closing the feed lets each stream finish cleanly instead of being cut.
        """
        self.closed = True
        self._published.set()

    async def wait_idle(self) -> None:
        """Return once no one is subscribed: how to check that a gone client left nothing behind."""
        await self._idle.wait()


def get_feed(connection: HTTPConnection) -> Feed:
    """The app's feed (``app.state.feed``), for HTTP and WebSocket routes alike."""
    feed: Feed = connection.app.state.feed
    return feed


FeedDep = Annotated[Feed, Depends(get_feed)]


@router.post("/publish")
async def publish(body: Publish, feed: FeedDep) -> Event:
    """Publish one event; the reply is the event as every client will see it."""
    return feed.publish(body.data)


@router.get("/poll")
async def poll(feed: FeedDep, after: Annotated[int, Query(ge=0)] = 0) -> Poll:
    """Short polling: answer at once with whatever is new, often nothing."""
    return Poll(events=feed.after(after), last_id=feed.last_id)


@router.websocket("/ws")
async def push(websocket: WebSocket, feed: FeedDep, after: Annotated[int, Query(ge=0)] = 0) -> None:
    """Push each event after ``after`` as one JSON text frame, as soon as it is published."""
    await websocket.accept()

    async def send_events() -> None:
        async for event in feed.subscribe(after):
            await websocket.send_text(event.model_dump_json())

    await until_disconnect(websocket, send_events)


async def until_disconnect(websocket: WebSocket, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` until it ends or the client goes away, whichever comes first.

    A server that only sends never calls ``receive()``, so without a reader it would learn of a
    disconnect only at its next send: an idle feed would keep a dead subscriber forever. anyio's
    task group (what Starlette itself uses) cancels the other side cleanly either way.
    """
    async with anyio.create_task_group() as group:

        async def read_until_disconnect() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass  # this feed takes no input; a client's messages are read and dropped
            group.cancel_scope.cancel()

        group.start_soon(read_until_disconnect)
        try:
            await work()
        except WebSocketDisconnect:
            pass  # a send found the client gone
        group.cancel_scope.cancel()


@router.get("/sse", response_class=EventSourceResponse)
async def stream(
    feed: FeedDep,
    after: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: each event's ``id:`` is its feed id, so a reconnecting browser resumes.

    ``EventSource`` reconnects with ``Last-Event-ID``, which wins over ``?after=``. When the
    client goes away, FastAPI cancels this generator (its ``finally`` blocks run at once).
    """
    start = last_event_id if last_event_id is not None else after
    async for event in feed.subscribe(start):
        yield ServerSentEvent(data=event, id=str(event.id))
