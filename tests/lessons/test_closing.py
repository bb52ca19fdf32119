"""Lesson 02's close codes and handshake refusals (``course_server.lessons.closing``).

The lesson's point is that a real client and ``TestClient`` disagree about closing before
accept: uvicorn turns it into HTTP 403 and drops the code, while ``TestClient`` hands the test
the ASGI close message, code and all. Both views are tested, side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import wait_timeout
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from course_server import RunningServer, Settings, start
from course_server.lessons.closing import MAX_REASON_BYTES, close_request

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One real server for this module (overrides conftest's per-test one, to save start-ups).

    Safe because lesson 02's endpoints keep no state from one connection to the next.
    """
    with start(name=f"test-{__name__}", settings=Settings()) as running:
        yield running


# close_request: the parser behind /ws/closer


def test_close_request_parses_code_and_reason() -> None:
    assert close_request("close 4001 Token required") == (4001, "Token required")


def test_close_request_reason_is_optional() -> None:
    assert close_request("close 1000") == (1000, "")


@pytest.mark.parametrize("text", ["hello", "close", "close abc", "shut 1000"])
def test_close_request_explains_its_syntax(text: str) -> None:
    assert close_request(text) == "send: close CODE [REASON], e.g. close 4001 Token required"


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2999, 5000])
def test_close_request_refuses_codes_that_cannot_be_sent(code: int) -> None:
    assert close_request(f"close {code}") == (
        f"{code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999"
    )


def test_close_request_refuses_a_reason_too_long_for_a_close_frame() -> None:
    reason = "é" * 62  # 124 bytes in UTF-8: one more than fits
    assert close_request(f"close 4000 {reason}") == (
        f"the reason is 124 bytes; at most {MAX_REASON_BYTES} fit"
    )


# /ws/closer


async def test_closer_closes_with_the_requested_app_code_real_client(
    server: RunningServer,
) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/closer")) as websocket:
        await websocket.send("close 4001 Token required")
        with pytest.raises(ConnectionClosedError):
            await websocket.recv()
    assert (websocket.close_code, websocket.close_reason) == (4001, "Token required")


def test_closer_closes_with_1000_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/closer") as websocket:
        websocket.send_text("close 1000 Done")
        assert websocket.receive() == {"type": "websocket.close", "code": 1000, "reason": "Done"}


def test_closer_answers_a_bad_request_and_stays_open(client: TestClient) -> None:
    with client.websocket_connect("/ws/closer") as websocket:
        websocket.send_text("close 1006")
        assert websocket.receive_text().startswith("1006 cannot be sent")
        websocket.send_text("close 4999")
        assert websocket.receive()["code"] == 4999


# /ws/close-before-accept: the seed's mistake


async def test_close_before_accept_is_http_403_to_a_real_client(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/close-before-accept")):
            pass
    assert (refused.value.response.status_code, refused.value.response.body) == (403, b"")


def test_close_before_accept_is_4001_in_testclient(client: TestClient) -> None:
    """TestClient shows the code uvicorn drops: a test can pass while real clients get 403."""
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/ws/close-before-accept"):
            pass
    assert (closed.value.code, closed.value.reason) == (4001, "Token required")


async def test_close_before_accept_with_token_welcomes(server: RunningServer) -> None:
    url = server.ws("/ws/close-before-accept?token=abc")
    async with asyncio.timeout(wait_timeout()), connect(url) as websocket:
        assert [message async for message in websocket] == ["Welcome!"]
    assert websocket.close_code == 1000


# /ws/close-after-accept: the fix


async def test_close_after_accept_is_4001_to_a_real_client(server: RunningServer) -> None:
    url = server.ws("/ws/close-after-accept")
    async with asyncio.timeout(wait_timeout()), connect(url) as websocket:
        with pytest.raises(ConnectionClosedError):
            await websocket.recv()
    assert (websocket.close_code, websocket.close_reason) == (4001, "Token required")


def test_close_after_accept_is_4001_in_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/close-after-accept") as websocket:
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_text()
    assert (closed.value.code, closed.value.reason) == (4001, "Token required")


def test_close_after_accept_with_token_welcomes(client: TestClient) -> None:
    with client.websocket_connect("/ws/close-after-accept?token=abc") as websocket:
        assert websocket.receive_text() == "Welcome!"


# /ws/deny: a real HTTP response instead of a WebSocket


async def test_deny_is_http_401_with_a_json_body_to_a_real_client(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/deny")):
            pass
    response = refused.value.response
    assert (response.status_code, response.body) == (401, b'{"detail":"Token required"}')
    assert response.headers["content-type"] == "application/json"


def test_deny_is_a_denial_response_in_testclient(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/ws/deny"):
            pass
    assert (denied.value.status_code, denied.value.json()) == (401, {"detail": "Token required"})


async def test_deny_with_token_welcomes(server: RunningServer) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/deny?token=abc")) as ws:
        assert await ws.recv() == "Welcome!"
