"""Lesson 02's WebSocket dependencies (``course_server.lessons.params``), seen by a real client.

Each test names what a client sees: HTTP 403 when a dependency or a ``Query`` refuses before
accept, a real 401 from ``send_denial_response``, a close code after accept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from course_server import RunningServer, Settings, start

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One real server for this module: the endpoint keeps no state between connections."""
    with start(name=f"test-{__name__}", settings=Settings()) as running:
        yield running


async def refusal(url: str, **headers: str) -> tuple[int, bytes]:
    """The HTTP status and body a handshake to ``url`` is refused with."""
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(wait_timeout()), connect(url, additional_headers=headers):
            pass
    return refused.value.response.status_code, bytes(refused.value.response.body)


async def test_query_token_and_header_reach_the_endpoint(server: RunningServer) -> None:
    url = server.ws("/ws/params?room=blue&token=abc")
    async with asyncio.timeout(wait_timeout()), connect(url, user_agent_header="ua/1") as ws:
        assert json.loads(await ws.recv()) == {"room": "blue", "user_agent": "ua/1"}


async def test_session_cookie_stands_in_for_the_token(server: RunningServer) -> None:
    url = server.ws("/ws/params?room=blue")
    headers = {"Cookie": "session=abc"}
    async with asyncio.timeout(wait_timeout()), connect(url, additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["room"] == "blue"


async def test_missing_token_is_http_403_before_accept(server: RunningServer) -> None:
    assert await refusal(server.ws("/ws/params?room=blue")) == (403, b"")


async def test_invalid_query_is_http_403_before_accept(server: RunningServer) -> None:
    assert await refusal(server.ws("/ws/params?room=Not%20Valid&token=abc")) == (403, b"")


async def test_denial_response_is_a_real_401(server: RunningServer) -> None:
    status, body = await refusal(server.ws("/ws/params?room=blue&token=expired"))
    assert (status, json.loads(body)) == (401, {"detail": "token expired"})


async def test_exception_after_accept_is_a_1008_close(server: RunningServer) -> None:
    url = server.ws("/ws/params?room=blue&token=abc")
    async with asyncio.timeout(wait_timeout()), connect(url) as ws:
        await ws.recv()
        await ws.send("forbidden")
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
    assert (ws.close_code, ws.close_reason) == (1008, "not allowed")


async def test_text_is_echoed_and_bye_closes_normally(server: RunningServer) -> None:
    url = server.ws("/ws/params?room=blue&token=abc")
    async with asyncio.timeout(wait_timeout()), connect(url) as ws:
        await ws.recv()
        await ws.send("hi")
        assert await ws.recv() == "hi"
        await ws.send("bye")
        assert [message async for message in ws] == []
    assert ws.close_code == 1000
