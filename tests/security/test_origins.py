"""The Origin guard: foreign pages cannot open WebSockets to the course server."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from course_server import RunningServer, Settings, create_app, start
from course_server.security.hosts import AllowedHosts
from course_server.security.origins import origin_allowed, server_origin

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("origin", "own"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("http://LOCALHOST:8000", True),
        ("http://localhost:8001", False),
        ("http://attacker.example:8000", False),  # whatever its Host header said
        ("ftp://localhost:8000", False),
        ("null", False),
    ],
)
def test_own_origins_are_the_loopback_names_at_the_servers_port(origin: str, own: bool) -> None:
    assert server_origin(origin, AllowedHosts(), ("127.0.0.1", 8000)) is own


def test_configured_hosts_are_own_origins_too_but_a_star_is_not() -> None:
    hosts = AllowedHosts(["chat.example", "*"])
    assert server_origin("https://chat.example", hosts, ("10.0.0.5", 8000))
    assert not server_origin("https://other.example", hosts, ("10.0.0.5", 8000))


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser: no cookies of anyone's to abuse
        ("http://localhost:8000", True),
        ("HTTP://LOCALHOST:8000/", True),
        ("http://localhost:8001", False),
        ("http://evil.example", False),
        ("null", False),  # sandboxed iframes and file:// pages
    ],
)
def test_origin_allowed(origin: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, ["http://localhost:8000"]) is allowed


async def test_no_origin_is_allowed(server: RunningServer) -> None:
    async with connect(server.ws("/ws/echo")) as websocket:
        await websocket.send("hi")
        assert await websocket.recv() == "You said: hi"


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
async def test_the_servers_own_origins_are_allowed(server: RunningServer, name: str) -> None:
    async with connect(server.ws("/ws/echo"), origin=f"http://{name}:{server.port}") as ws:
        await ws.send("hi")
        assert await ws.recv() == "You said: hi"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1"])
async def test_foreign_origins_get_http_403_with_a_reason(
    server: RunningServer, origin: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws("/ws/echo"), origin=origin):
            pass
    assert refused.value.response.status_code == 403
    assert b"is not allowed" in refused.value.response.body


async def test_configured_origins_replace_the_default() -> None:
    settings = Settings(jwt_secret="t", allowed_origins=("https://chat.example",))
    with start(name="origins-configured", settings=settings) as server:
        async with connect(server.ws("/ws/echo"), origin="https://chat.example") as ws:
            await ws.send("hi")
            assert await ws.recv() == "You said: hi"
        with pytest.raises(InvalidStatus):
            async with connect(server.ws("/ws/echo"), origin=f"http://127.0.0.1:{server.port}"):
                pass


def test_testclient_sees_the_denial_response(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect("/ws/echo", headers={"origin": "http://evil.example"}):
                pass
    assert refused.value.status_code == 403
