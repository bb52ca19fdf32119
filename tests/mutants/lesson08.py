"""Plausible wrong answers to lesson 08's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Header
from fastapi.sse import ServerSentEvent

from mutants.registry import mutant

# --- 08.1 squares ----------------------------------------------------------------------------


def make_squares(*, resume: int = 1, named: bool = True, retry_every: bool = False):
    """``resume``: where to start after Last-Event-ID N: N + resume (0: repeats N; None: 1)."""

    async def squares(
        last_event_id: Annotated[int | None, Header()] = None, count: int = 5
    ) -> AsyncIterator[ServerSentEvent]:
        first = (last_event_id or 0) + resume if resume is not None else 1
        first = max(first, 1)
        for n in range(first, count + 1):
            yield ServerSentEvent(
                id=str(n),
                event="square" if named else None,
                data={"n": n, "square": n * n},
                retry=2000 if n == first or retry_every else None,
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


@mutant("08.1", "no ids: a browser cannot resume")
async def squares_without_ids(
    last_event_id: Annotated[int | None, Header()] = None, count: int = 5
) -> AsyncIterator[ServerSentEvent]:
    for n in range((last_event_id or 0) + 1, count + 1):
        yield ServerSentEvent(event="square", data={"n": n, "square": n * n}, retry=2000)


# --- 08.2 parse_events -----------------------------------------------------------------------


def make_parser(
    *,
    join: bool = True,
    comments: bool = True,
    strip: bool = False,
    keep_id: bool = True,
    need_data: bool = True,
    reset_name: bool = True,
):
    def parse_events(lines: list[str]) -> list[dict[str, str]]:
        events: list[dict[str, str]] = []
        data: list[str] = []
        name, last_id = "", ""
        for line in [*lines, ""]:
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
            field, _, value = line.partition(":")
            value = value.strip() if strip else value.removeprefix(" ")
            if field == "data" or (field == "" and not comments):
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                last_id = value
        return events

    return parse_events


mutant("08.2", "keeps only the last data line")(make_parser(join=False))
mutant("08.2", "reads comments as data")(make_parser(comments=False))
mutant("08.2", "strips every space around the value")(make_parser(strip=True))
mutant("08.2", "forgets the id after each event")(make_parser(keep_id=False))
mutant("08.2", "dispatches events with no data")(make_parser(need_data=False))
mutant("08.2", "an event name outlives a blank line with no data")(make_parser(reset_name=False))
