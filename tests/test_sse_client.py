"""The SSE parser follows the browser's rules for text/event-stream."""

from __future__ import annotations

import pytest
from conftest import wait_timeout

from course_server import RunningServer
from course_server.sse_client import SSEParser, SSEvent, parse, take


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
