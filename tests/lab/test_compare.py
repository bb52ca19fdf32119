"""Lesson 01's experiment (``course_server.lab.compare``), run tiny against a real server.

No assertion looks at a latency's value: timings vary from machine to machine. The counts do not.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import wait_timeout

from course_server import Settings, start
from course_server.lab.compare import Row, as_table, label, plot, run

pytestmark = pytest.mark.anyio

EVENTS = 6


async def bounded_run(base_url: str) -> list[Row]:
    async with asyncio.timeout(wait_timeout(15)):
        return await run(base_url, events=EVENTS, interval=0.01, poll_intervals=(0.02, 0.1))


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    """One tiny run for the whole module: every test reads the same rows."""
    with start(name="test-compare", settings=Settings(jwt_secret="test")) as server:
        return asyncio.run(bounded_run(server.http_url))


def by_method(rows: list[Row]) -> dict[str, Row]:
    return {row.method: row for row in rows}


async def test_every_method_delivers_every_event_and_loses_none(rows: list[Row]) -> None:
    assert list(by_method(rows)) == [
        "polling every 20 ms",
        "polling every 100 ms",
        "WebSocket",
        "WebSocket, no deflate",
        "SSE",
    ]
    for row in rows:
        assert (row.method, row.delivered, row.lost) == (row.method, EVENTS, 0)


async def test_polling_makes_more_than_one_request(rows: list[Row]) -> None:
    for row in rows:
        if row.method.startswith("polling"):
            assert row.requests > 1, row


async def test_websocket_and_sse_make_exactly_one_request(rows: list[Row]) -> None:
    methods = by_method(rows)
    for name in ("WebSocket", "WebSocket, no deflate", "SSE"):
        assert methods[name].requests == 1


async def test_each_client_uses_one_connection(rows: list[Row]) -> None:
    assert {row.connections for row in rows} == {1}


async def test_bytes_are_counted_both_ways(rows: list[Row]) -> None:
    for row in rows:
        assert row.bytes_up > 0 and row.bytes_down > 0, row
        assert row.bytes_per_event == (row.bytes_up + row.bytes_down) / EVENTS


async def test_every_latency_is_measured(rows: list[Row]) -> None:
    for row in rows:
        assert 0 <= row.latency_median_ms <= row.latency_p95_ms, row


async def test_table_has_a_header_a_rule_and_one_line_per_method(rows: list[Row]) -> None:
    lines = as_table(rows).splitlines()
    assert lines[0].split()[:3] == ["method", "delivered", "lost"]
    assert set(lines[1]) == {"-"}
    assert [line[:22].strip() for line in lines[2:]] == [row.method for row in rows]
    assert len({len(line) for line in lines}) == 1  # fixed width


async def test_plot_draws_three_panels(rows: list[Row]) -> None:
    figure = plot(rows)
    assert [axes.get_title() for axes in figure.axes] == [
        "Delivery latency, ms (median / p95)",
        "Bytes on the wire per event",
        "HTTP requests made",
    ]


def test_label_reads_like_a_person_would_write_it() -> None:
    assert [label(s) for s in (0.05, 0.25, 1.0, 2.5)] == ["50 ms", "250 ms", "1 s", "2.5 s"]
