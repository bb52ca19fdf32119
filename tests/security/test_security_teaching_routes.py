"""The seed's broken ``/naive/…`` endpoints: mounted for the lessons, not by a plain server.

``python -m course_server`` serves them only with ``--teaching-routes`` or
``COURSE_TEACHING_ROUTES=true``; the notebook runner mounts them unless told not to. Where they
are mounted, their intervals are clamped: ``/naive/ws/robust?timeout=1e-7`` made one connection
spin a core, pinging as fast as the loop could go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import get_type_hints

import pytest
from conftest import wait_timeout
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from course_server import RunningServer, Settings, create_app, start
from course_server.seed import heartbeat
from course_server.seed.heartbeat import MAX_SECONDS, MIN_SECONDS, clamp_seconds
from course_server.tools import processes

pytestmark = pytest.mark.anyio

TEACHING = [
    "/naive/ws/broadcast",
    "/naive/ws/users/alice",
    "/naive/ws/heartbeat",
    "/naive/ws/robust",
]


async def opens(url: str) -> bool:
    """Does a WebSocket handshake to ``url`` succeed?"""
    try:
        async with asyncio.timeout(wait_timeout()), connect(url):
            return True
    except InvalidStatus:
        return False


@pytest.fixture(scope="module")
def lesson_server() -> Iterator[RunningServer]:
    with start(name=f"test-{__name__}", settings=Settings(jwt_secret="t")) as running:
        yield running


def test_the_command_line_server_does_not_mount_them() -> None:
    with processes.spawn() as process:
        assert not any(asyncio.run(opens(process.ws(path))) for path in TEACHING)
        assert asyncio.run(opens(process.ws("/ws/broadcast")))  # the course's own version is


def test_the_teaching_routes_flag_mounts_them() -> None:
    with processes.spawn(args=["--teaching-routes"]) as process:
        assert all(asyncio.run(opens(process.ws(path))) for path in TEACHING)


def test_the_teaching_routes_variable_mounts_them() -> None:
    with processes.spawn(env={"COURSE_TEACHING_ROUTES": "true"}) as process:
        assert asyncio.run(opens(process.ws("/naive/ws/robust")))


def test_create_app_alone_does_not_mount_them() -> None:
    with TestClient(create_app(Settings(jwt_secret="t"))) as client:
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/naive/ws/broadcast"):
            pass


@pytest.mark.parametrize("path", TEACHING)
async def test_the_notebook_runner_mounts_them(lesson_server: RunningServer, path: str) -> None:
    assert await opens(lesson_server.ws(path))


async def test_the_runner_leaves_them_out_when_told_to() -> None:
    with start(name="no-teaching", settings=Settings(teaching_routes=False)) as server:
        assert not await opens(server.ws("/naive/ws/robust"))


@pytest.mark.parametrize(
    ("asked", "used"),
    [(1e-7, MIN_SECONDS), (0, MIN_SECONDS), (-5, MIN_SECONDS), (1e12, MAX_SECONDS), (2.5, 2.5)],
)
def test_intervals_are_clamped(asked: float, used: float) -> None:
    assert clamp_seconds(asked) == used


@pytest.mark.parametrize(
    ("endpoint", "parameter"),
    [(heartbeat.websocket_with_heartbeat, "interval"), (heartbeat.robust_websocket, "timeout")],
)
def test_the_endpoints_take_their_intervals_through_the_clamp(
    endpoint: Callable[..., object], parameter: str
) -> None:
    assert get_type_hints(endpoint, include_extras=True)[parameter] == heartbeat.Seconds


async def test_a_tiny_robust_timeout_still_serves(lesson_server: RunningServer) -> None:
    """The attack's URL: the connection works, pinging at the clamped pace in between."""
    async with connect(lesson_server.ws("/naive/ws/robust?timeout=1e-7")) as websocket:
        await websocket.send("hi")
        async with asyncio.timeout(wait_timeout()):
            while (frame := await websocket.recv()) != "Received: hi":
                assert frame == '{"type":"ping"}'


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
async def test_non_finite_intervals_are_refused(lesson_server: RunningServer, value: str) -> None:
    assert not await opens(lesson_server.ws(f"/naive/ws/heartbeat?interval={value}"))


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("off", False)])
def test_the_teaching_routes_setting_is_read_from_the_environment(raw: str, value: bool) -> None:
    assert Settings.from_env({"COURSE_TEACHING_ROUTES": raw}).teaching_routes is value
    assert Settings().teaching_routes is None  # unset: the launcher decides
