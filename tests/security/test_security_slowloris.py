"""Slow clients are cut: headers not complete within ``COURSE_HEADER_TIMEOUT`` close the connection.

The attack (slowloris): open connections and send a request's headers a byte at a time, never
finishing, until the server has no connections left to give. Each test plays it over raw TCP
against a real server whose header timeout is one second, and waits, with a deadline, for the
server to hang up. No test asserts how fast: only that the cut comes, and that others are served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from conftest import wait_timeout

from course_server import RunningServer, Settings, start
from course_server.clients.handshake import upgrade_request
from course_server.runner import H11Deadline, with_header_timeout
from course_server.tools import processes

pytestmark = pytest.mark.anyio

TIMEOUT = 1.0  # the servers' COURSE_HEADER_TIMEOUT here
PACE = 0.5  # seconds between the slow client's bytes
GIVE_UP = 15.0  # the server must have cut the client by then (scaled by wait_timeout)


async def trickle(port: int, head: bytes, rest: bytes = b"X-Slow: " + b"a" * 200) -> bool:
    """Send ``head`` at once, then ``rest`` a byte per ``PACE``; True once the server hangs up.

    The pace is the attack itself, and each pause is a wait for the server's end of file: the
    loop stops as soon as the server closes, and gives up (False) after ``GIVE_UP`` seconds.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_timeout(GIVE_UP)
    try:
        writer.write(head)
        for byte in rest:
            try:
                if await asyncio.wait_for(reader.read(65536), PACE) == b"":
                    return True
            except TimeoutError:
                pass  # still open: send the next byte
            except ConnectionError:
                return True
            if loop.time() > deadline:
                return False
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        return False
    finally:
        writer.close()


def request_head(port: int, path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    settings = Settings(jwt_secret="t", header_timeout=TIMEOUT)
    with start(name=f"test-{__name__}", settings=settings) as running:
        yield running


async def test_a_client_sending_its_headers_a_byte_at_a_time_is_cut(server: RunningServer) -> None:
    assert await trickle(server.port, request_head(server.port))


async def test_a_client_that_never_finishes_its_request_line_is_cut(server: RunningServer) -> None:
    assert await trickle(server.port, b"GET /", rest=b"healthz" * 40)


async def test_a_half_sent_websocket_handshake_is_cut(server: RunningServer) -> None:
    head = upgrade_request("127.0.0.1", server.port, "/ws/echo").removesuffix(b"\r\n")
    assert await trickle(server.port, head)


async def test_a_slow_second_request_on_a_kept_alive_connection_is_cut(
    server: RunningServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request_head(server.port) + b"\r\n")
        async with asyncio.timeout(wait_timeout()):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await reader.readuntil(b'{"status":"ok"}')
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        cut = False
        async with asyncio.timeout(wait_timeout(GIVE_UP)):
            for _ in range(int(GIVE_UP / PACE)):
                try:
                    if await asyncio.wait_for(reader.read(65536), PACE) == b"":
                        cut = True
                        break
                except TimeoutError:
                    writer.write(b"X")  # a header name that never ends
        assert cut
    finally:
        writer.close()


async def test_clients_that_send_at_once_are_served_while_slow_ones_are_cut(
    server: RunningServer,
) -> None:
    slow = [asyncio.create_task(trickle(server.port, request_head(server.port))) for _ in range(5)]
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        for _ in range(3):
            assert (await http.get(server.url("/healthz"))).status_code == 200
    assert all(await asyncio.gather(*slow))


async def test_the_h11_protocol_cuts_slow_clients_too() -> None:
    settings = Settings(jwt_secret="t", header_timeout=TIMEOUT)
    h11 = with_header_timeout(H11Deadline, TIMEOUT)
    with start(name="slowloris-h11", settings=settings, http=h11) as server:
        assert await trickle(server.port, request_head(server.port))
        async with httpx.AsyncClient(timeout=wait_timeout()) as http:
            assert (await http.get(server.url("/healthz"))).status_code == 200


async def test_the_command_line_server_cuts_slow_clients() -> None:
    with processes.spawn(env={"COURSE_HEADER_TIMEOUT": str(TIMEOUT)}) as process:
        port = int(process.http_url.rsplit(":", 1)[1])
        assert await trickle(port, request_head(port))


def test_the_header_timeout_is_read_from_the_environment() -> None:
    assert Settings.from_env({"COURSE_HEADER_TIMEOUT": "2.5"}).header_timeout == 2.5
    assert Settings().header_timeout == 10


def test_a_header_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="header_timeout"):
        Settings(header_timeout=0)
