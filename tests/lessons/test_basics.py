"""Lesson 02's endpoints (``course_server.lessons.basics``), each driven two ways.

A real ``websockets`` client against uvicorn (the ``server`` fixture) sees what a learner sees;
Starlette's in-process ``TestClient`` is faster and sees the ASGI messages themselves. Where the
two disagree (a handshake refused by validation) both views are tested.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from conftest import wait_timeout
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from course_server import RunningServer, Settings, start

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One real server for this module (overrides conftest's per-test one, to save start-ups).

    Safe because lesson 02's endpoints keep no state from one connection to the next.
    """
    with start(name=f"test-{__name__}", settings=Settings()) as running:
        yield running


# /ws/echo


async def test_echo_text_real_client(server: RunningServer) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/echo")) as websocket:
        await websocket.send("Hello")
        assert await websocket.recv() == "You said: Hello"


def test_echo_text_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as websocket:
        websocket.send_text("Hello")
        assert websocket.receive_text() == "You said: Hello"


async def test_echo_bytes_come_back_as_bytes_real_client(server: RunningServer) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/echo")) as websocket:
        await websocket.send(b"\x00\xff")
        assert await websocket.recv() == b"\x00\xff"


def test_echo_bytes_come_back_as_bytes_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/echo") as websocket:
        websocket.send_bytes(b"\x00\xff")
        assert websocket.receive_bytes() == b"\x00\xff"


async def test_echo_keeps_talking_after_many_messages(server: RunningServer) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/echo")) as websocket:
        for n in range(20):
            await websocket.send(str(n))
            assert await websocket.recv() == f"You said: {n}"


# /ws/rooms/{room_id}


async def test_room_prefixes_the_path_parameter_real_client(server: RunningServer) -> None:
    url = server.ws("/ws/rooms/room-123")
    async with asyncio.timeout(wait_timeout()), connect(url) as websocket:
        await websocket.send("hi")
        assert await websocket.recv() == "[room-123] hi"


def test_room_prefixes_the_path_parameter_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/rooms/lobby") as websocket:
        websocket.send_text("hi")
        assert websocket.receive_text() == "[lobby] hi"


# /ws/json


async def test_json_valid_message_gets_json_reply_real_client(server: RunningServer) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/json")) as websocket:
        await websocket.send(json.dumps({"type": "say", "text": "Hello"}))
        assert json.loads(await websocket.recv()) == {"type": "said", "text": "Hello", "length": 5}


def test_json_valid_message_gets_json_reply_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as websocket:
        websocket.send_json({"type": "say", "text": "Hello"})
        assert websocket.receive_json() == {"type": "said", "text": "Hello", "length": 5}


async def test_json_invalid_json_gets_error_and_stays_open_real_client(
    server: RunningServer,
) -> None:
    async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/json")) as websocket:
        await websocket.send("not json")
        error = json.loads(await websocket.recv())
        assert (error["type"], error["code"]) == ("error", "invalid_json")
        await websocket.send(json.dumps({"type": "say", "text": "still here"}))
        assert json.loads(await websocket.recv())["text"] == "still here"


def test_json_invalid_json_gets_error_and_stays_open_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as websocket:
        websocket.send_text("{oops")
        assert websocket.receive_json()["code"] == "invalid_json"
        websocket.send_json({"type": "say", "text": "still here"})
        assert websocket.receive_json()["text"] == "still here"


def test_json_missing_field_is_named_in_the_error(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as websocket:
        websocket.send_json({"type": "say"})
        assert websocket.receive_json() == {
            "type": "error",
            "code": "invalid_message",
            "message": "text: Field required",
        }


def test_json_wrong_type_and_empty_text_are_both_reported(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as websocket:
        websocket.send_json({"type": "shout", "text": ""})
        message = websocket.receive_json()["message"]
        assert message.startswith("type: ") and "text: " in message


def test_json_non_object_is_invalid_with_no_field_named(client: TestClient) -> None:
    with client.websocket_connect("/ws/json") as websocket:
        websocket.send_json([1, 2])
        assert websocket.receive_json() == {
            "type": "error",
            "code": "invalid_message",
            "message": 'send a JSON object with a "type" field',
        }


# /ws/greet


async def test_greet_uses_defaults_then_closes_normally_real_client(
    server: RunningServer,
) -> None:
    url = server.ws("/ws/greet?name=Ada")
    async with asyncio.timeout(wait_timeout()), connect(url) as websocket:
        assert [message async for message in websocket] == ["Hello, Ada!"]
    assert (websocket.close_code, websocket.close_reason) == (1000, "Greeted")


def test_greet_typed_parameters_testclient(client: TestClient) -> None:
    with client.websocket_connect("/ws/greet?name=Ada&lang=hi&times=2") as websocket:
        assert [websocket.receive_text(), websocket.receive_text()] == ["Namaste, Ada!"] * 2
        assert websocket.receive() == {"type": "websocket.close", "code": 1000, "reason": "Greeted"}


@pytest.mark.parametrize("query", ["", "?lang=hi", "?name=Ada&lang=fr", "?name=Ada&times=9"])
async def test_greet_invalid_query_is_a_bare_403_to_a_real_client(
    server: RunningServer, query: str
) -> None:
    """FastAPI closes before accept; uvicorn can only answer 403, with no body and no reason."""
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(wait_timeout()), connect(server.ws("/ws/greet" + query)):
            pass
    assert (refused.value.response.status_code, refused.value.response.body) == (403, b"")


def test_greet_missing_name_is_1008_with_the_errors_in_testclient(client: TestClient) -> None:
    """In-process, the 1008 and FastAPI's error list survive: a real client never sees them."""
    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/ws/greet"):
            pass
    assert closed.value.code == 1008
    assert [error["loc"] for error in closed.value.reason] == [["query", "name"]]
