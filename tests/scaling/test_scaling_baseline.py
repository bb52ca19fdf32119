"""Lesson 07's pub/sub baseline (``course_server.scaling.baseline``), run as two real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from course_server.tools import processes
from course_server.tools.processes import ServerProcess

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pair(redis_url: str) -> Iterator[list[ServerProcess]]:
    started = [processes.start("course_server.scaling.baseline", "--redis-url", redis_url)]
    started.append(processes.start("course_server.scaling.baseline", "--redis-url", redis_url))
    yield started
    for process in started:
        process.stop()


async def test_a_message_reaches_a_client_of_the_other_process(pair: list[ServerProcess]) -> None:
    async with connect(pair[0].ws("/ws")) as ada, connect(pair[1].ws("/ws")) as dan:
        await ada.send("hello from the first process")
        assert await dan.recv(decode=True) == "hello from the first process"


async def test_the_sender_gets_its_own_message_back_through_redis(
    pair: list[ServerProcess],
) -> None:
    async with connect(pair[0].ws("/ws")) as ada:
        await ada.send("echo?")
        assert await ada.recv(decode=True) == "echo?"


def test_ctrl_c_stops_it_cleanly(redis_url: str) -> None:
    process = processes.start("course_server.scaling.baseline", "--redis-url", redis_url)
    assert process.stop() == 0
