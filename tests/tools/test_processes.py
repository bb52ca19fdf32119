"""``processes``: real ``python -m course_server`` processes, started ready and stopped cleanly."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from course_server.tools.processes import ServerProcess, spawn, spawn_many, start

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pair() -> Iterator[list[ServerProcess]]:
    started = spawn_many(2, timeout=wait_timeout(20))
    yield started
    for process in started:
        process.stop()


def test_a_spawned_process_is_healthy_on_the_url_it_printed(pair: list[ServerProcess]) -> None:
    process = pair[0]
    assert process.http_url.startswith("http://127.0.0.1:")
    assert httpx.get(process.url("/healthz")).json() == {"status": "ok"}


def test_processes_get_ports_of_their_own(pair: list[ServerProcess]) -> None:
    assert pair[0].http_url != pair[1].http_url


def test_a_process_reports_its_cpu_time_and_memory(pair: list[ServerProcess]) -> None:
    process = pair[0]
    assert process.cpu_seconds() > 0
    assert process.rss_mb(peak=True) >= process.rss_mb() > 1


async def test_start_runs_any_module_that_prints_where_it_serves() -> None:
    """The benchmarks' servers have no /healthz: the URL they print says they listen."""
    with start("benchmarks.raw_server", ready_path=None, timeout=wait_timeout(20)) as process:
        assert process.http_url.startswith("http://127.0.0.1:")
        async with connect(process.ws("/")) as websocket:
            await websocket.send("ping")
            async with asyncio.timeout(wait_timeout(10)):
                assert await websocket.recv() == "Someone said: ping"
    assert not process.running


async def test_stop_is_a_ctrl_c_that_says_1001_and_exits_0(pair: list[ServerProcess]) -> None:
    process = pair[1]
    async with connect(process.ws("/ws/echo")) as websocket:
        assert process.stop(timeout=wait_timeout(10)) == 0
        with pytest.raises(ConnectionClosed) as closed:
            await websocket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert not process.running and "Traceback" not in process.stderr()


def test_a_process_that_cannot_start_raises_with_its_log() -> None:
    with pytest.raises(
        RuntimeError, match=re.escape("cannot reach Redis at redis://127.0.0.1:1/0")
    ):
        spawn(redis_url="redis://127.0.0.1:1/0", timeout=wait_timeout(20))
