"""Lesson 08, a notifications stream: ``POST /notifications`` publishes, SSE subscribers receive.

Publishing takes a bearer token from ``POST /token`` (lesson 06): ``Authorization: Bearer T``,
else 401. Subscribing is open to anyone.

Each notification gets an id and lands in the app's notification feed (the same ``Feed`` lesson
01 uses: bounded history, any number of subscribers), so a client that drops and reconnects with
``Last-Event-ID`` gets exactly what it missed, while it is still in history.

Who gives the id is the app's ``Notifier`` (``app.state.notifier``, from the app's backend):
in-process, the feed itself; with a Redis URL (lesson 07), Redis, and every process's feed
receives each notification (``scaling.feed``), so a subscriber on any process gets what was
published on any other.

Keep-alive: when no notification comes for 15 s, FastAPI itself writes a ``: ping`` comment, so
proxies and load balancers do not cut an idle stream; ``EventSource`` ignores comments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field, JsonValue

from course_server.lessons.events import RECONNECT_MS, tracked
from course_server.lessons.feed import Event, Feed
from course_server.lessons.pages import CONTENT_SECURITY_POLICY, STATIC_DIR
from course_server.security.tokens import bearer_claims

router = APIRouter(prefix="/notifications", tags=["lesson 08: server-sent events"])


class NotificationIn(BaseModel):
    """Body of ``POST /notifications``."""

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=2000)


class Notifier(Protocol):
    """Gives each notification its id and gets it into the feed (part of the app's backend)."""

    async def publish(self, data: JsonValue) -> Event:
        """The notification as every subscriber will see it (or HTTP 503: not published)."""
        ...


class InProcess:
    """The default: the feed gives the ids, and this process's subscribers are all there are."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    async def publish(self, data: JsonValue) -> Event:
        return self.feed.publish(data)


def get_notifications(request: Request) -> Feed:
    feed: Feed = request.app.state.notifications
    return feed


def get_notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.notifier
    return notifier


NotificationsDep = Annotated[Feed, Depends(get_notifications)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(bearer_claims)],
    responses={
        401: {"description": "No valid bearer token"},
        503: {"description": "Redis cannot be reached"},
    },
)
async def publish(notification: NotificationIn, notifier: NotifierDep) -> Event:
    """Publish to every subscriber (with a bearer token); the reply carries its id."""
    return await notifier.publish(notification.model_dump())


@router.get("/stream", response_class=EventSourceResponse)
async def stream(
    request: Request,
    feed: NotificationsDep,
    after: Annotated[int | None, Query(ge=0, description="start after this id")] = None,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Named ``notification`` events with ids; ``Last-Event-ID`` (or ``?after=``) resumes.

    With neither, the stream starts with the next notification: a new subscriber does not
    replay the whole history.
    """
    start = last_event_id if last_event_id is not None else after
    with tracked(request):
        # Sent at once, not with the first notification: a proxy that forwards a response only
        # with its first bytes (jupyter-server-proxy, a buffering CDN) then opens the stream now,
        # and the browser's EventSource reports "open" before anything is published.
        yield ServerSentEvent(retry=RECONNECT_MS)
        async for event in feed.subscribe(feed.last_id if start is None else start):
            yield ServerSentEvent(id=str(event.id), event="notification", data=event.data)


@router.get("/page", include_in_schema=False)
async def page() -> FileResponse:
    """A browser page listening with ``EventSource`` (``static/notifications.html``)."""
    return FileResponse(
        STATIC_DIR / "notifications.html",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )
