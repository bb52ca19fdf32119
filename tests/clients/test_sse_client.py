"""The SSE parser follows the browser's rules for text/event-stream."""

from __future__ import annotations

import pytest
from conftest import wait_timeout
from fastapi.sse import format_sse_event
from hypothesis import given, settings
from hypothesis import strategies as st

from course_server import RunningServer
from course_server.clients.sse import LineSplitter, SSEParser, SSEvent, parse, take

# Deterministic: the same examples on every run, so a failure is the code's, not the draw's.
examples = settings(derandomize=True, max_examples=200, deadline=None)


def test_one_event_with_every_field() -> None:
    assert parse('event: update\ndata: {"a": 1}\nid: 7\nretry: 500\n\n') == [
        SSEvent(data='{"a": 1}', event="update", id="7", retry=500)
    ]


def test_data_lines_join_with_newlines() -> None:
    assert parse("data: one\ndata: two\n\n")[0].data == "one\ntwo"


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert parse("data:  two spaces\n\n")[0].data == " two spaces"
    assert parse("data:none\n\n")[0].data == "none"


def test_comments_are_kept_for_the_lesson() -> None:
    assert parse(": ping\n\n") == [SSEvent(comment="ping")]


def test_the_last_id_carries_over_like_a_browsers_last_event_id() -> None:
    first, second = parse("id: 3\ndata: a\n\ndata: b\n\n")
    assert (first.id, second.id) == ("3", "3")


def test_a_block_without_data_dispatches_nothing_but_sets_the_id() -> None:
    parser = SSEParser()
    assert [parser.feed(line) for line in ("id: 9", "")] == [None, None]
    assert parser.last_id == "9"


def test_unknown_fields_and_bad_retry_are_ignored() -> None:
    assert parse("foo: bar\nretry: soon\ndata: x\n\n") == [SSEvent(data="x")]


@pytest.mark.anyio
async def test_take_reads_n_events_from_a_live_stream(server: RunningServer) -> None:
    events = await take(
        server.url("/events"), 2, last_event_id="10", interval=0.01, timeout=wait_timeout()
    )
    assert [(e.id, e.data) for e in events] == [("11", '"Event 11"'), ("12", '"Event 12"')]


def test_an_event_the_stream_ends_before_its_blank_line_is_not_dispatched() -> None:
    assert parse("data: kept\n\ndata: cut off\n") == [SSEvent(data="kept")]


def test_an_unfinished_last_line_is_discarded() -> None:
    assert parse("data: kept\n\ndata: cut") == [SSEvent(data="kept")]


def test_lines_without_a_final_blank_line_dispatch_nothing() -> None:
    assert parse(["data: a", "", "data: b"]) == [SSEvent(data="a")]


def test_a_field_with_no_space_after_the_colon() -> None:
    assert parse("event:note\ndata:x\nid:4\n\n") == [SSEvent(data="x", event="note", id="4")]


def test_a_bare_field_name_is_that_field_with_an_empty_value() -> None:
    assert parse("data\ndata\n\n") == [SSEvent(data="\n")]
    assert parse("event: note\nevent\ndata: x\n\n") == [SSEvent(data="x")]


def test_a_bare_id_resets_the_last_id_to_empty() -> None:
    assert [e.id for e in parse("id: 3\ndata: a\n\nid\ndata: b\n\n")] == ["3", ""]


def test_one_leading_byte_order_mark_is_dropped() -> None:
    assert parse("\ufeffdata: x\n\n") == [SSEvent(data="x")]
    # A second one is part of the first line, whose field is then "\ufeffdata": ignored.
    assert parse("\ufeff\ufeffdata: x\n\n") == []


def test_cr_lf_and_crlf_each_end_a_line() -> None:
    assert parse("data: a\rdata: b\r\ndata: c\n\r\ndata: d\r\r") == [
        SSEvent(data="a\nb\nc"),
        SSEvent(data="d"),
    ]


def test_no_other_character_ends_a_line() -> None:
    text = "data: a\x85b\u2028c\x0bd\x0ce\x1cf\n\n"
    assert parse(text) == [SSEvent(data="a\x85b\u2028c\x0bd\x0ce\x1cf")]


def test_an_id_with_a_null_character_is_ignored() -> None:
    assert [e.id for e in parse("id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n")] == ["1", "1"]


def test_retry_takes_ascii_digits_only() -> None:
    assert [e.retry for e in parse("retry: ²\ndata: a\n\nretry: 1200\ndata: b\n\n")] == [
        None,
        1200,
    ]


def test_a_crlf_split_between_two_chunks_ends_one_line() -> None:
    splitter = LineSplitter()
    assert [splitter.feed(chunk) for chunk in ("data: a\r", "\n", "\n")] == [["data: a"], [], [""]]


def test_a_byte_order_mark_is_dropped_only_at_the_start_of_the_stream() -> None:
    splitter = LineSplitter()
    assert splitter.feed("\ufeffa\n") + splitter.feed("\ufeffb\n") == ["a", "\ufeffb"]


line_ends = st.sampled_from(["\n", "\r", "\r\n"])
# Field values a server can send: no CR or LF (those end the line), no NULL in an id.
values = st.text(st.characters(exclude_characters="\r\n\0", codec="utf-8"), max_size=12)
sse_events = st.builds(
    SSEvent,
    data=st.lists(values, min_size=1, max_size=3).map("\n".join),
    event=st.one_of(st.just("message"), values.filter(bool)),
    id=st.one_of(st.none(), values),
    retry=st.one_of(st.none(), st.integers(0, 10**6)),
)


def wire(events: list[SSEvent], line_end: str, bom: bool) -> str:
    """The stream FastAPI's encoder writes for ``events``, with ``line_end`` for every line end."""
    body = "".join(
        format_sse_event(
            data_str=e.data,
            event=None if e.event == "message" else e.event,
            id=e.id,
            retry=e.retry,
        ).decode()
        for e in events
    )
    return ("\ufeff" if bom else "") + body.replace("\n", line_end)


def as_browser_sees(events: list[SSEvent]) -> list[SSEvent]:
    """Each event with the last id sent so far, as a browser reports lastEventId."""
    last: str | None = None
    seen = []
    for event in events:
        last = event.id if event.id is not None else last
        seen.append(SSEvent(data=event.data, event=event.event, id=last, retry=event.retry))
    return seen


@examples
@given(st.lists(sse_events, max_size=5), line_ends, st.booleans())
def test_what_fastapi_encodes_parses_back(events: list[SSEvent], end: str, bom: bool) -> None:
    assert parse(wire(events, end, bom)) == as_browser_sees(events)


@examples
@given(st.lists(sse_events, min_size=1, max_size=4), line_ends, st.data())
def test_a_stream_cut_anywhere_dispatches_only_the_events_it_ended(
    events: list[SSEvent], end: str, data: st.DataObject
) -> None:
    text = wire(events, end, bom=False)
    cut = text[: data.draw(st.integers(0, len(text) - 1))]
    # A cut between the CR and the LF of a blank line's CRLF: the CR alone has ended it.
    ended = cut.count(end * 2) + (end == "\r\n" and cut.endswith("\r\n\r"))
    assert parse(cut) == parse(text)[:ended]


@examples
@given(st.text(st.sampled_from("ab:\r\n\ufeff"), max_size=30), st.data())
def test_chunks_split_anywhere_give_the_lines_of_the_whole(text: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=5)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    splitter = LineSplitter()
    assert [line for piece in pieces for line in splitter.feed(piece)] == LineSplitter().feed(text)
