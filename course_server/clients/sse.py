"""A small Server-Sent Events client for notebooks and tests: parse the stream as a browser does.

The parsing follows the HTML standard's rules for ``text/event-stream``: a leading byte order
mark is dropped; lines end with CR, LF or CRLF (and nothing else); a line is ``field: value``
(one optional space after the colon), or ``field`` alone (an empty value); ``data`` lines of one
event are joined with ``\\n``; a blank line dispatches the event; lines starting with ``:`` are
comments; an event that the stream's end cuts off (no blank line after it) is not dispatched.
Comments are kept here (browsers drop them) so a lesson can show the keep-alive pings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Iterable

import httpx

BOM = "\ufeff"
_LINE_END = re.compile(r"\r\n|\r|\n")  # str.splitlines() would also split on \x85, \u2028, …


@dataclasses.dataclass
class SSEvent:
    """One dispatched event, or a comment (``comment`` set, everything else empty)."""

    data: str = ""
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    comment: str | None = None


class LineSplitter:
    """Feed it the stream's text in chunks; it returns the lines each chunk completes.

    A chunk may end between the CR and the LF of one CRLF: the CR ends the line at once, and a
    LF that starts the next chunk is then the rest of that line end, not an empty line.
    """

    def __init__(self) -> None:
        self._rest = ""
        self._after_cr = False
        self._started = False

    def feed(self, chunk: str) -> list[str]:
        if not self._started and chunk:
            chunk, self._started = chunk.removeprefix(BOM), True
        if self._after_cr and chunk.startswith("\n"):
            chunk, self._after_cr = chunk[1:], False
        if chunk:
            self._after_cr = chunk.endswith("\r")
        *lines, self._rest = _LINE_END.split(self._rest + chunk)
        return lines


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
        elif name == "retry" and value.isascii() and value.isdigit():  # not "²" or "١"
            self._retry = int(value)
        return None  # unknown fields are ignored, as the standard says

    def _dispatch(self) -> SSEvent | None:
        data, event, retry = self._data, self._event or "message", self._retry
        self._data, self._event, self._retry = [], "", None
        if not data:
            return None
        return SSEvent(data="\n".join(data), event=event, id=self.last_id, retry=retry)


def parse(text: str | Iterable[str]) -> list[SSEvent]:
    """Every event and comment in a stream body (or in its lines, line ends removed).

    What follows the last line end is an unfinished line, and an event with no blank line after
    it is unfinished too: the stream's end discards both, as a browser does.
    """
    lines = LineSplitter().feed(text) if isinstance(text, str) else text
    parser = SSEParser()
    return [event for line in lines if (event := parser.feed(line)) is not None]


async def events(
    client: httpx.AsyncClient,
    url: str,
    *,
    last_event_id: str | None = None,
    **params: str | float | None,
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
        # Not aiter_lines(): httpx splits lines as str.splitlines() does, on \x85 and others.
        splitter, parser = LineSplitter(), SSEParser()
        async for chunk in response.aiter_text():
            for line in splitter.feed(chunk):
                if (event := parser.feed(line)) is not None:
                    yield event


async def take(
    url: str,
    n: int,
    *,
    last_event_id: str | None = None,
    timeout: float = 5.0,
    comments: bool = False,
    **params: str | float | None,
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
