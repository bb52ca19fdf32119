"""Plausible wrong answers to lesson 08's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Annotated

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
