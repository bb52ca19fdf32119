"""Plausible wrong answers to lesson 08's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Header
from fastapi.sse import ServerSentEvent

from mutants.registry import mutant

# --- 08.1 squares ----------------------------------------------------------------------------


def make_squares(
    *,
    resume: int | None = 1,
    named: bool = True,
    retry_every: bool = False,
    retry_fresh_only: bool = False,
    last: int = 0,
    start: int = 1,
    data_text: bool = False,
    fixed_count: int | None = None,
):
    """``resume``: where to start after Last-Event-ID N: N + resume (0: repeats N; None: 1).

    ``last``: added to the range's end (-1 drops the last event); ``start``: the first id of a
    fresh stream; ``fixed_count``: the count used whatever ``?count=`` says.
    """

    async def squares(
        last_event_id: Annotated[int | None, Header()] = None, count: int = 5
    ) -> AsyncIterator[ServerSentEvent]:
        if fixed_count is not None:
            count = fixed_count
        if last_event_id is None or resume is None:
            first = start
        else:
            first = last_event_id + resume
        for n in range(first, count + 1 + last):
            data = {"n": n, "square": n * n}
            yield ServerSentEvent(
                id=str(n),
                event="square" if named else None,
                data=json.dumps(data) if data_text else data,
                retry=2000
                if retry_every or (n == first and (n == 1 or not retry_fresh_only))
                else None,
            )

    return squares


@mutant("08.1", "reads Last-Event-ID from the query string, so never sees the header")
async def squares_from_query(
    last_event_id: int | None = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    first = (last_event_id or 0) + 1
    for n in range(first, count + 1):
        yield ServerSentEvent(
            id=str(n),
            event="square",
            data={"n": n, "square": n * n},
            retry=2000 if n == first else None,
        )


mutant("08.1", "resends the event the client already has")(make_squares(resume=0))
mutant("08.1", "ignores Last-Event-ID: starts over")(make_squares(resume=None))
mutant("08.1", "unnamed events")(make_squares(named=False))
mutant("08.1", "retry on every event")(make_squares(retry_every=True))
mutant("08.1", "the last event is left out: range(first, count)")(make_squares(last=-1))
mutant("08.1", "retry only on a fresh stream's first event, not a resumed one's")(
    make_squares(retry_fresh_only=True)
)
mutant("08.1", "ids start at 0")(make_squares(start=0))
mutant("08.1", "resumes one event late: Last-Event-ID N starts at N + 2")(make_squares(resume=2))
mutant("08.1", "data JSON-encoded by hand: the client reads a string")(make_squares(data_text=True))
mutant("08.1", "shaped like the prompt's example: always 5 events")(make_squares(fixed_count=5))


@mutant("08.1", "no ids: a browser cannot resume")
async def squares_without_ids(
    last_event_id: Annotated[int | None, Header()] = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    for n in range((last_event_id or 0) + 1, count + 1):
        yield ServerSentEvent(event="square", data={"n": n, "square": n * n}, retry=2000)


# --- 08.2 parse_events -----------------------------------------------------------------------


SPLITS = {
    "spec": r"\r\n|\r|\n",
    "lf": r"\n",  # CR alone ends nothing; CRLF leaves a CR on every value
    "each": r"[\r\n]",  # CRLF ends two lines: an early blank line
}


def make_parser(
    *,
    join: bool = True,
    comments: bool = True,
    strip: bool = False,
    keep_id: bool = True,
    need_data: bool = True,
    reset_name: bool = True,
    split: str = "spec",
    splitlines: bool = False,
    end_dispatches: bool = False,
    bom: str = "start",
    null_id: bool = True,
    colon_space: bool = False,
    exact_names: bool = True,
):
    def parse_events(text: str) -> list[dict[str, str]]:
        events: list[dict[str, str]] = []
        data: list[str] = []
        name, last_id = "", ""
        if bom == "start":
            text = text.removeprefix("\ufeff")
        elif bom == "everywhere":
            text = text.replace("\ufeff", "")
        if splitlines:
            lines = text.splitlines()  # the end of the text also ends its last line
        else:
            *lines, rest = re.split(SPLITS[split], text)
            if end_dispatches:
                lines.append(rest)
        if end_dispatches:
            lines.append("")
        for line in lines:
            if not line:
                if data or not need_data:
                    joined = "\n".join(data) if join else (data[-1] if data else "")
                    events.append({"event": name or "message", "data": joined, "id": last_id})
                    if not keep_id:
                        last_id = ""
                if data or reset_name:
                    name = ""
                data = []
                continue
            if line.startswith(":") and comments:
                continue
            if colon_space:
                field, _, value = line.partition(": ")
            else:
                field, _, value = line.partition(":")
            value = value.strip() if strip else value.removeprefix(" ")
            if not exact_names:
                field = field.strip().lower()
            if field == "data" or (field == "" and not comments):
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id" and (not null_id or "\0" not in value):
                last_id = value
        return events

    return parse_events


mutant("08.2", "keeps only the last data line")(make_parser(join=False))
mutant("08.2", "reads comments as data")(make_parser(comments=False))
mutant("08.2", "strips every space around the value")(make_parser(strip=True))
mutant("08.2", "forgets the id after each event")(make_parser(keep_id=False))
mutant("08.2", "dispatches events with no data")(make_parser(need_data=False))
mutant("08.2", "an event name outlives a blank line with no data")(make_parser(reset_name=False))
mutant("08.2", "splits only on ': ', so data:x is no data line")(make_parser(colon_space=True))
mutant("08.2", "str.splitlines(): \\x85, \\u2028 and others end lines too")(
    make_parser(splitlines=True)
)
mutant("08.2", "splits on LF only: a lone CR ends no line")(make_parser(split="lf"))
mutant("08.2", "splits on CR and LF alike: CRLF ends two lines")(make_parser(split="each"))
mutant("08.2", "the end of the text dispatches the event in progress")(
    make_parser(end_dispatches=True)
)
mutant("08.2", "keeps the byte order mark")(make_parser(bom="keep"))
mutant("08.2", "drops every byte order mark, not only the first")(make_parser(bom="everywhere"))
mutant("08.2", "an id with a NULL character still counts")(make_parser(null_id=False))
mutant("08.2", "field names are trimmed and lowercased")(make_parser(exact_names=False))

# Equivalent mutants that scripts/mutate.py reports as survivors (no check can kill them):
# - deleting the `continue` after a blank line's dispatch: the blank line then goes on to
#   `partition(":")` as a field named "", which is ignored;
# - deleting `if line.startswith(":"): continue` (or only its `continue`): a comment line is a
#   field named "" too, and ignored the same way (the standard defines comments by that rule).


# --- 08.1, more mistakes -----------------------------------------------------------------------


def simple_squares(
    first_of: Any = None, *, retry: Any = None, end: Any = None, header: Any = None
) -> Any:
    """The solution with one piece swapped: where to start, which retry, where to stop."""

    # A default, not Annotated: annotations are text here, read later in the module's globals.
    async def squares(
        last_event_id: int | None = header or Header(None), count: int = 5
    ) -> AsyncIterator[ServerSentEvent]:
        first = first_of(last_event_id, count) if first_of else (last_event_id or 0) + 1
        stop = end(count) if end else count + 1
        for n in range(first, stop):
            yield ServerSentEvent(
                id=str(n),
                event="square",
                data={"n": n, "square": n * n},
                retry=retry(n, first, count) if retry else (2000 if n == first else None),
            )

    return squares


mutant("08.1", "retry in seconds: retry=2, not 2000 milliseconds")(
    simple_squares(retry=lambda n, first, count: 2 if n == first else None)
)
mutant("08.1", "retry on the last event, not the first")(
    simple_squares(retry=lambda n, first, count: 2000 if n == count else None)
)
mutant("08.1", "a Last-Event-ID past the end starts over: 'an id from an old stream'")(
    simple_squares(lambda last, count: 1 if last is None or last >= count else last + 1)
)
mutant("08.1", "clamps the start to count: a client that has it all gets the last event again")(
    simple_squares(lambda last, count: min((last or 0) + 1, count))
)
mutant("08.1", "Header(convert_underscores=False): looks for a last_event_id header, never sent")(
    simple_squares(header=Header(None, convert_underscores=False))
)
mutant("08.1", "caps the count at 10, to be safe")(
    simple_squares(end=lambda count: min(count, 10) + 1)
)

_seen = {"last": 0}


@mutant("08.1", "remembers the last id sent in a module variable, not the client's header")
async def squares_remembered(
    last_event_id: Annotated[int | None, Header()] = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    first = _seen["last"] + 1 if last_event_id is not None else 1
    for n in range(first, count + 1):
        _seen["last"] = n
        yield ServerSentEvent(
            id=str(n),
            event="square",
            data={"n": n, "square": n * n},
            retry=2000 if n == first else None,
        )


@mutant("08.1", "a live stream that never ends: a keep-alive after the last event")
async def squares_forever(
    last_event_id: Annotated[int | None, Header()] = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    first = (last_event_id or 0) + 1
    for n in range(first, count + 1):
        yield ServerSentEvent(
            id=str(n),
            event="square",
            data={"n": n, "square": n * n},
            retry=2000 if n == first else None,
        )
    while True:
        await asyncio.sleep(1)
        yield ServerSentEvent(comment="keep-alive")


# --- 08.2, more mistakes -----------------------------------------------------------------------


def make_parser_2(
    *,
    empty_data_dispatches: bool = True,
    all_colons: bool = False,
    reset_name_after: bool = True,
    empty_name_keeps: bool = False,
    bare_id: bool = True,
    first_id: str | None = "",
    strip_trailing: bool = False,
    bare_lines: bool = True,
    id_at_data: bool = False,
):
    """The solution with one rule changed; each flag names the rule as the learner has it."""

    def parse_events(text: str) -> list[dict[str, str]]:
        events: list[dict[str, Any]] = []
        data: list[str] = []
        name = ""
        last_id: str | None = first_id
        event_id: str | None = None
        *lines, _unfinished = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))
        for line in lines:
            if not line:
                joined = "\n".join(data)
                if strip_trailing:
                    joined = joined.rstrip("\n")
                if data and (empty_data_dispatches or joined):
                    the_id = event_id if id_at_data and event_id is not None else last_id
                    events.append({"event": name or "message", "data": joined, "id": the_id})
                data, event_id = [], None
                if reset_name_after:
                    name = ""
                continue
            if line.startswith(":"):
                continue
            if ":" not in line and not bare_lines:
                continue
            if all_colons:
                parts = line.split(":")
                field, value = parts[0], (parts[1] if len(parts) > 1 else "")
            else:
                field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
                if event_id is None:
                    event_id = last_id
            elif field == "event":
                name = (value or name) if empty_name_keeps else value
            elif field == "id" and "\0" not in value and (bare_id or ":" in line):
                last_id = value
        return events

    return parse_events


mutant("08.2", "an event whose data is empty is not dispatched: if joined:")(
    make_parser_2(empty_data_dispatches=False)
)
mutant("08.2", "splits on every colon: a value's own colons cut it short")(
    make_parser_2(all_colons=True)
)
mutant("08.2", "the event name is kept for the next event")(make_parser_2(reset_name_after=False))
mutant("08.2", "an empty event line keeps the name set before it")(
    make_parser_2(empty_name_keeps=True)
)
mutant("08.2", "a bare id line is ignored, not an empty id")(make_parser_2(bare_id=False))
mutant("08.2", "the id is None before any id line, not ''")(make_parser_2(first_id=None))
mutant("08.2", "strips trailing newlines from the data: empty data lines at the end vanish")(
    make_parser_2(strip_trailing=True)
)
mutant("08.2", "skips lines without a colon")(make_parser_2(bare_lines=False))
mutant("08.2", "an event's id is the last id when its first data line came")(
    make_parser_2(id_at_data=True)
)


@mutant("08.2", "splits the text into events on blank lines first, LF only")
def parse_by_blocks(text: str) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    last_id = ""
    *blocks, _unfinished = text.removeprefix("\ufeff").split("\n\n")
    for block in blocks:
        data: list[str] = []
        name = ""
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id" and "\0" not in value:
                last_id = value
        if data:
            events.append({"event": name or "message", "data": "\n".join(data), "id": last_id})
    return events
