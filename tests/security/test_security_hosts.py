"""DNS rebinding: a request whose ``Host`` is not one of the server's names gets a 400.

The attack: a page on ``attacker.example`` rebinds its name to 127.0.0.1, then its requests reach
the course server with ``Host`` and ``Origin`` both ``attacker.example:PORT``. Each test performs
it against a real server over raw TCP, where the client, not a library, picks every header.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest
from conftest import wait_timeout
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from starlette.routing import BaseRoute

from course_server import RunningServer, Settings, create_app, start
from course_server.clients.handshake import SAMPLE_KEY
from course_server.security.hosts import AllowedHosts, split_host
from course_server.tools import processes

pytestmark = pytest.mark.anyio

ATTACKER = "attacker.example"


async def handshake_status(
    port: int, path: str, host: str, origin: str | None = None, *, extra: tuple[str, ...] = ()
) -> int:
    """The status a WebSocket Upgrade request for ``path`` gets, with these Host and Origin
    (and ``extra`` header lines)."""
    upgrade = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {SAMPLE_KEY}",
        "Sec-WebSocket-Version: 13",
        *([f"Origin: {origin}"] if origin else []),
    ]
    return await request_status(port, path, host, *upgrade, *extra)


async def request_status(port: int, path: str, host: str, *headers: str) -> int:
    """The status a GET request for ``path`` gets, with this Host and these header lines."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *headers, "", ""]
    async with asyncio.timeout(wait_timeout()):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write("\r\n".join(lines).encode("latin-1"))
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
    return int(status_line.split()[1])


def websocket_paths(routes: list[BaseRoute]) -> Iterator[str]:
    """Every WebSocket route of an app as served (prefixes applied), parameters filled in."""
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, APIWebSocketRoute):
            yield re.sub(r"\{[^}]*\}", "alice", context.path)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """The notebook runner's server: every WebSocket route, the teaching ones included."""
    with start(name=f"test-{__name__}", settings=Settings(jwt_secret="t")) as running:
        yield running


def rebound(server: RunningServer) -> str:
    return f"{ATTACKER}:{server.port}"


def test_the_app_has_the_websocket_routes_the_attack_tried(server: RunningServer) -> None:
    assert len(list(websocket_paths(server.app.routes))) >= 18


async def test_every_websocket_route_refuses_a_rebound_host_and_origin(
    server: RunningServer,
) -> None:
    host = rebound(server)
    statuses = {
        path: await handshake_status(server.port, path, host, origin=f"http://{host}")
        for path in websocket_paths(server.app.routes)
    }
    assert set(statuses.values()) == {400}, statuses


async def test_a_rebound_host_without_origin_is_refused_too(server: RunningServer) -> None:
    assert await handshake_status(server.port, "/ws/echo", rebound(server)) == 400


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
async def test_the_servers_own_names_upgrade_with_their_own_origin(
    server: RunningServer, name: str
) -> None:
    host = f"{name}:{server.port}"
    assert await handshake_status(server.port, "/ws/echo", host, origin=f"http://{host}") == 101


async def test_an_own_name_through_a_forwarded_port_is_answered(server: RunningServer) -> None:
    """A loopback name cannot be rebound; a TCP proxy or a published port changes the port."""
    assert await handshake_status(server.port, "/ws/echo", f"localhost:{server.port + 1}") == 101


async def test_but_a_page_at_another_port_is_another_origin(server: RunningServer) -> None:
    other = f"http://localhost:{server.port + 1}"
    status = await handshake_status(server.port, "/ws/echo", f"localhost:{server.port}", other)
    assert status == 403


async def test_http_requests_with_a_rebound_host_get_400(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        response = await http.get(server.url("/healthz"), headers={"Host": rebound(server)})
    assert response.status_code == 400


async def test_a_second_host_header_gets_400_whichever_comes_first(server: RunningServer) -> None:
    # RFC 9112 §3.2: more than one Host is a 400. The guard read the first only, so the rebound
    # name could ride along second, for whatever in front of or behind it reads the last one.
    own = f"localhost:{server.port}"
    for first, second in ((own, rebound(server)), (rebound(server), own), (own, own)):
        assert await request_status(server.port, "/healthz", first, f"Host: {second}") == 400
    status = await handshake_status(
        server.port, "/ws/echo", own, f"http://{own}", extra=(f"Host: {rebound(server)}",)
    )
    assert status == 400


async def test_a_login_form_from_a_rebound_page_gets_400(server: RunningServer) -> None:
    host = rebound(server)
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        response = await http.post(
            server.url("/session"),
            data={"username": "alice", "password": "wonderland"},
            headers={"Host": host, "Origin": f"http://{host}"},
        )
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


async def test_a_foreign_origin_is_refused_even_with_the_right_host(server: RunningServer) -> None:
    own = f"127.0.0.1:{server.port}"
    status = await handshake_status(server.port, "/ws/echo", own, origin=f"http://{ATTACKER}")
    assert status == 403


async def test_configured_hosts_are_answered_and_are_their_own_origins() -> None:
    settings = Settings(jwt_secret="t", allowed_hosts=("chat.example",))
    with start(name="hosts-configured", settings=settings) as server:
        status = await handshake_status(
            server.port, "/ws/echo", "chat.example", origin="https://chat.example"
        )
        assert status == 101
        assert await handshake_status(server.port, "/ws/echo", rebound(server)) == 400


async def test_a_star_lets_every_host_through_but_not_every_origin() -> None:
    settings = Settings(jwt_secret="t", allowed_hosts=("*",))
    with start(name="hosts-star", settings=settings) as server:
        host = rebound(server)
        assert await handshake_status(server.port, "/ws/echo", host) == 101
        assert await handshake_status(server.port, "/ws/echo", host, f"http://{host}") == 403


def test_the_command_line_server_checks_hosts_at_the_port_it_bound() -> None:
    """``python -m course_server --port 0`` learns its port only once bound: the check uses it."""
    with processes.spawn() as process:
        port = int(process.http_url.rsplit(":", 1)[1])
        assert asyncio.run(handshake_status(port, "/ws/echo", f"{ATTACKER}:{port}")) == 400
        assert asyncio.run(handshake_status(port, "/ws/echo", f"localhost:{port}")) == 101


def test_allowed_hosts_come_from_the_command_line_too() -> None:
    with processes.spawn(args=["--allowed-hosts", "chat.example"]) as process:
        response = httpx.get(
            process.url("/healthz"), headers={"Host": "chat.example"}, timeout=wait_timeout()
        )
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("LocalHost:8000", ("localhost", 8000)),
        ("localhost", ("localhost", 80)),
        ("[::1]:8000", ("[::1]", 8000)),
        ("[::1]", ("[::1]", 80)),
        ("", None),
        ("localhost:0", None),
        ("localhost:99999", None),
        ("localhost:80x", None),
        ("::1", None),  # an IPv6 address needs its brackets in a Host header
        ("[::1", None),
        ("evil.example/x", None),
        ("user@localhost", None),
    ],
)
def test_split_host(value: str, parsed: tuple[str, int] | None) -> None:
    assert split_host(value) == parsed


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("chat.example", True),
        ("chat.example:8443", True),  # no port in the entry: any port
        ("api.example:9000", True),
        ("api.example:9001", False),
        ("a.b.wild.example", True),
        ("wild.example", False),  # *.wild.example means its subdomains
        ("chat.example.attacker.example", False),
    ],
)
def test_configured_host_entries(host: str, allowed: bool) -> None:
    hosts = AllowedHosts(["chat.example", "api.example:9000", "*.wild.example"])
    assert hosts.allows(host, "http", ("127.0.0.1", 8000)) is allowed


def test_a_bad_allowed_hosts_entry_fails_when_the_app_is_made() -> None:
    with pytest.raises(ValueError, match="not a host name"):
        create_app(Settings(allowed_hosts=("http://chat.example",)))


def test_the_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"COURSE_ALLOWED_HOSTS": "a.example, b.example:8080"})
    assert settings.allowed_hosts == ("a.example", "b.example:8080")
