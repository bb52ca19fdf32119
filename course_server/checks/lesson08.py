"""Checks for lesson 08's exercises: an SSE stream that resumes, and parsing SSE like a browser.

The stream is mounted as FastAPI mounts any SSE path operation (``response_class=
EventSourceResponse``) and read over HTTP; ``sse_client.parse`` (the course's parser) reads the
learner's stream; counts and ids are drawn (``cases.seeded``), so a stream shaped like the
prompt's examples does not pass. For the parser exercise it is the other way round: the check
writes the streams (one from a real FastAPI endpoint, the others one rule each: line ends, a byte
order mark, bare fields, a stream cut off…, then 300 random ones), and the learner's parser must
read them as ``sse_client.parse`` does.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi.sse import EventSourceResponse, ServerSentEvent

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.cases import agree, seeded
from course_server.checks.harness import Harness
from course_server.clients import sse as sse_client

# --- 08.1 a stream that resumes --------------------------------------------------------------

squares = exercise(
    "08.1",
    "An SSE stream that resumes after Last-Event-ID",
    target="squares",
    references=(
        "course_server.lessons.events:numbered_events",
        "course_server.lessons.events:_paced",
    ),
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
            # The whole stream, not each read: keep-alive comments must not keep it going.
            async with asyncio.timeout(3):
                response = await client.get(h.server.url(path), headers=headers)
        except (httpx.TimeoutException, TimeoutError):
            raise CheckFailed(
                f"GET {path}: the stream did not end within 3 s: end it after the last event"
            ) from None
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


def expected_ids(first: int, count: int) -> list[str]:
    return [str(n) for n in range(first, count + 1)]


@squares.check("events 1 to count, each named square, with its id and data")
async def _all(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    rng = seeded("08.1 count")
    for count in (rng.randint(6, 9), 1, 0, rng.randint(20, 60)):
        events = await read_stream(h, f"/squares?count={count}")
        ids = expected_ids(1, count)
        expect([e.id for e in events] == ids, f"?count={count} sent {listed(events)}")
        names = [e.event for e in events]
        expect(all(name == "square" for name in names), f"?count={count}: event names {names}")
        data = [parsed(e.data) for e in events]
        expected = [{"n": n, "square": n * n} for n in range(1, count + 1)]
        expect(data == expected, f"?count={count}: the data was {data}, not {expected}")


def parsed(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


@squares.check("only the first event carries retry: 2000")
async def _retry(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    count = seeded("08.1 retry").randint(3, 6)
    events = await read_stream(h, f"/squares?count={count}")
    retries = [e.retry for e in events]
    expected = [2000] + [None] * (count - 1)
    expect(retries == expected, f"?count={count}: retry per event {retries}, not {expected}")


@squares.check("Last-Event-ID: N resumes at N + 1")
async def _resume(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    rng = seeded("08.1 resume")
    for count, last in ((rng.randint(7, 9), rng.randint(2, 5)), (4, 0), (5, 3)):
        events = await read_stream(h, f"/squares?count={count}", last_event_id=str(last))
        ids = expected_ids(last + 1, count)
        what = f"?count={count} with Last-Event-ID: {last}"
        expect([e.id for e in events] == ids, f"{what} sent {listed(events)}, not ids {ids}")
        expect(events[0].retry == 2000, f"{what}: a resumed stream's first event needs retry too")


@squares.check("a client that has seen every event gets none again")
async def _caught_up(h: Harness, endpoint: Any) -> None:
    await serve_squares(h, endpoint)
    count = seeded("08.1 caught up").randint(3, 8)
    for last in (count, count + 2):
        events = await read_stream(h, f"/squares?count={count}", last_event_id=str(last))
        expect(events == [], f"after {last} of {count}, the stream sent {listed(events)}")


# --- 08.2 parsing a stream -------------------------------------------------------------------

parser = exercise(
    "08.2",
    "Read an SSE stream as a browser does",
    target="parse_events",
    references=(
        "course_server.clients.sse:parse",
        "course_server.clients.sse:SSEParser",
        "course_server.clients.sse:LineSplitter",
    ),
)

WORDS = ("apple", "zoë", "kiwi", "naïve", "日本", "plum pie", "a:b", "x=1")


def word(rng: random.Random) -> str:
    return f"{rng.choice(WORDS)}{rng.randint(0, 99)}"


def browser_view(text: str) -> list[dict[str, str]]:
    """What a browser dispatches, as the exercise asks for it: event, data, id ("" if none)."""
    return [
        {"event": e.event, "data": e.data, "id": e.id or ""}
        for e in sse_client.parse(text)
        if e.comment is None
    ]


async def reads_as_a_browser(h: Harness, parse_events: Any, texts: list[str]) -> None:
    """Fail unless ``parse_events`` returns what a browser dispatches, for every stream."""
    await agree(h, parse_events, texts, browser_view, shown=lambda text: f"the stream {text!r}")


def streams(name: str, *templates: str, draws: int = 2) -> list[str]:
    """Each template filled in ``draws`` times: {a}, {b}, {c}, {n} words, {i}, {j} numbers."""
    rng = seeded(f"08.2 {name}")
    texts = []
    for template in templates:
        for _ in range(draws):
            fill = {key: word(rng) for key in "abcn"}
            texts.append(template.format(i=rng.randint(2, 999), j=rng.randint(2, 999), **fill))
    return texts


@parser.check("reads event, data and id from a real stream; event defaults to message")
async def _fields(h: Harness, parse_events: Any) -> None:
    rng = seeded("08.2 fields")
    sent = [
        ServerSentEvent(id=str(rng.randint(2, 999)), event=word(rng), data={"title": word(rng)}),
        ServerSentEvent(data=word(rng)),
        ServerSentEvent(id=str(rng.randint(2, 999)), raw_data=word(rng)),
    ]

    async def produce() -> AsyncIterator[ServerSentEvent]:
        for event in sent:
            yield event

    h.get("/stream", produce, response_class=EventSourceResponse)
    server = await h.serve()
    async with httpx.AsyncClient(timeout=3) as client:
        text = (await client.get(server.url("/stream"))).text
    await reads_as_a_browser(h, parse_events, [text])


@parser.check("joins the data lines of one event with newlines")
async def _multiline(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "multiline",
        "data: {a}\ndata: {b}\ndata: {c}\n\n",
        "data: {a}\ndata: \ndata: {b}\n\n",
        "data: {a}\ndata:\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("skips comments, such as keep-alive pings")
async def _comments(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "comments",
        ": ping\n\n",
        ":{a}\ndata: {b}\n: {c}\n\n",
        "data: {a}\n:\n\n",
        ": data: {a}\n\n",
        "data: {a}\n: event: {n}\n: id: {i}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("the colon needs no space after it; one space is dropped, no more")
async def _colon(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "colon",
        "data:{a}\n\n",
        "event:{n}\ndata:{a}\nid:{i}\n\n",
        "data:  {a}\n\n",
        "data: {a} \n\n",
        "data: {a}: {b}\n\n",
        "data:: {a}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("a line with no colon is a field with an empty value")
async def _bare(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "bare",
        "data\n\n",
        "data: {a}\ndata\n\n",
        "event: {n}\nevent\ndata: {a}\n\n",
        "id: {i}\ndata: {a}\n\nid\ndata: {b}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("an event without an id keeps the last id seen")
async def _ids(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "ids",
        "id: {i}\ndata: {a}\n\ndata: {b}\n\n",
        "data: {a}\n\n",
        "id: {i}\n\ndata: {a}\n\n",
        "data: {a}\nid: {i}\n\nid: {j}\ndata: {b}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("an id that contains a NULL character is ignored")
async def _null_id(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "null id", "id: {i}\ndata: {a}\n\nid: {j}\0{c}\ndata: {b}\n\n", "id: \0\ndata: {a}\n\n"
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("CR, LF and CRLF each end a line")
async def _line_ends(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "line ends",
        "data: {a}\r\ndata: {b}\r\n\r\n",
        "data: {a}\rdata: {b}\r\r",
        "event: {n}\rdata: {a}\r\n\ndata: {b}\n\r",
        "data: {a}\r\n\r\ndata: {b}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("no other character ends a line (not as str.splitlines() does)")
async def _no_other_line_ends(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "other line ends",
        "data: {a}\x85{b}\n\n",
        "data: {a}\u2028{b}\n\n",
        "data: {a}\x0c{b}\x0b{c}\x1e\n\n",
        draws=1,
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("a byte order mark at the very start is dropped")
async def _bom(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "bom",
        "\ufeffdata: {a}\n\n",
        "\ufeffevent: {n}\ndata: {a}\n\n",
        "data: {a}\n\n\ufeffdata: {b}\n\n",
        draws=1,
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("an event the stream's end cuts off is not dispatched")
async def _cut_off(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "cut off",
        "data: {a}\n\ndata: {b}\n",
        "data: {a}\n\ndata: {b}",
        "data: {a}",
        "id: {i}\ndata: {a}\r\n",
        "data: {a}\n\n: {b}",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("a blank line after no data dispatches nothing, and forgets the event name")
async def _nodata(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "no data",
        "event: {n}\n\ndata: {a}\n\n",
        "retry: 100\n\n",
        "\n\n\n",
        "event: {n}\n\n",
        "id: {i}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


@parser.check("ignores other fields: retry, unknown names, names with spaces or capitals")
async def _unknown(h: Harness, parse_events: Any) -> None:
    texts = streams(
        "unknown",
        "retry: 3000\ndata: {a}\n\n",
        "foo: {b}\ndata: {a}\n\n",
        "Data: {b}\ndata: {a}\n\n",
        " data: {b}\ndata: {a}\n\n",
        "data : {b}\ndata: {a}\n\n",
        "ID: {i}\nEvent: {n}\ndata: {a}\n\n",
    )
    await reads_as_a_browser(h, parse_events, texts)


def random_stream(rng: random.Random) -> str:
    """A stream of every kind of line, with every kind of line end."""
    kinds = [
        "data: {a}", "data:{a}", "data", "data:  {a}", "event: {n}", "event", "id: {i}", "id",
        ": {c}", "retry: {i}", "foo: {b}", "", "", "",
    ]  # fmt: skip
    fill = {key: word(rng) for key in "abcn"}
    count = rng.randint(1, 9)
    lines = [rng.choice(kinds).format(i=rng.randint(2, 99), **fill) for _ in range(count)]
    text = "".join(line + rng.choice(("\n", "\r", "\r\n")) for line in lines)
    unfinished = rng.choice(("", "", f"data: {fill['a']}"))
    return ("\ufeff" if rng.random() < 0.2 else "") + text + unfinished


@parser.check("reads 300 random streams as a browser does")
async def _random(h: Harness, parse_events: Any) -> None:
    rng = seeded("08.2 random")
    await reads_as_a_browser(h, parse_events, [random_stream(rng) for _ in range(300)])
