"""A small Server-Sent Events client for notebooks and tests: parse the stream as a browser does.

The parsing follows the HTML standard's rules for ``text/event-stream``: lines are
``field: value`` (one optional space after the colon), ``data`` lines of one event are joined with
``\\n``, a blank line dispatches the event, lines starting with ``:`` are comments. Comments are
kept here (browsers drop them) so a lesson can show the keep-alive pings.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable

import httpx


@dataclasses.dataclass
class SSEvent:
    """One dispatched event, or a comment (``comment`` set, everything else empty)."""

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


class SSEParser:
    """Feed it lines; it returns the events that each blank line completes."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self.last_id: str | None = None
        self._retry: int | None = None

    def feed(self, line: str) -> SSEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return SSEvent(comment=line[1:].removeprefix(" "))
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None  # unknown fields are ignored, as the standard says

    def _dispatch(self) -> SSEvent | None:
        data, event, retry = self._data, self._event or "message", self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return SSEvent(data="\n".join(data), event=event, id=self.last_id, retry=retry)


def parse(text: str | Iterable[str]) -> list[SSEvent]:
    """Every event and comment in a complete stream body (or an iterable of its lines)."""
    lines = text.splitlines() if isinstance(text, str) else text
    parser = SSEParser()
    return [event for line in [*lines, ""] if (event := parser.feed(line)) is not None]


async def events(
    client: httpx.AsyncClient, url: str, *, last_event_id: str | None = None, **params: object
) -> AsyncIterator[SSEvent]:
    """Stream ``url`` and yield events (and comments) as they arrive.

    Sends ``Accept: text/event-stream`` like ``EventSource`` does, and ``Last-Event-ID`` when
    given. Stop iterating to disconnect.
    """
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with client.stream("GET", url, headers=headers, params=params) as response:
        response.raise_for_status()
        parser = SSEParser()
        async for line in response.aiter_lines():
            if (event := parser.feed(line)) is not None:
                yield event


async def take(
    url: str,
    n: int,
    *,
    last_event_id: str | None = None,
    timeout: float = 5.0,
    comments: bool = False,
    **params: object,
) -> list[SSEvent]:
    """Connect, collect the first ``n`` events, disconnect. Comments count only if asked for."""
    collected: list[SSEvent] = []
    async with httpx.AsyncClient(timeout=timeout) as client, asyncio.timeout(timeout):
        async for event in events(client, url, last_event_id=last_event_id, **params):
            if event.comment is not None and not comments:
                continue
            collected.append(event)
            if len(collected) == n:
                break
    return collected
