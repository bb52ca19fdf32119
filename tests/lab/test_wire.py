"""The byte-counting proxy (``course_server.lab.wire``) between a client and a small TCP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from conftest import wait_timeout

from course_server import RunningServer
from course_server.lab.wire import CountingProxy

pytestmark = pytest.mark.anyio


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything, then close once the client has finished sending."""
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_proxy_listens_on_loopback_on_a_free_port(echo_port: int) -> None:
    async with CountingProxy("127.0.0.1", echo_port) as proxy:
        assert proxy.host == "127.0.0.1"
        assert proxy.port not in (0, echo_port)
        assert proxy.url("ws", "/x") == f"ws://127.0.0.1:{proxy.port}/x"


async def test_proxy_forwards_both_ways_and_counts_every_byte(echo_port: int) -> None:
    async with CountingProxy("127.0.0.1", echo_port) as proxy:
        async with asyncio.timeout(wait_timeout()):
            reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
            writer.write(b"x" * 1000)
            writer.write_eof()  # the half-close must reach the server, or it never answers EOF
            assert await reader.read() == b"x" * 1000
            writer.close()
            await writer.wait_closed()
    assert (proxy.stats.bytes_up, proxy.stats.bytes_down) == (1000, 1000)
    assert proxy.stats.total == 2000
    assert proxy.stats.connections == 1


async def test_proxy_counts_each_connection(echo_port: int) -> None:
    async with CountingProxy("127.0.0.1", echo_port) as proxy:
        for _ in range(3):
            async with asyncio.timeout(wait_timeout()):
                reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
                writer.write_eof()
                await reader.read()
                writer.close()
                await writer.wait_closed()
    assert proxy.stats.connections == 3


async def test_proxy_refuses_connections_beyond_its_limit(echo_port: int) -> None:
    async with CountingProxy("127.0.0.1", echo_port, max_connections=1) as proxy:
        async with asyncio.timeout(wait_timeout()):
            first_reader, first = await asyncio.open_connection(proxy.host, proxy.port)
            first.write(b"hi")
            assert await first_reader.readexactly(2) == b"hi"  # relayed: it holds the one slot
            reader, second = await asyncio.open_connection(proxy.host, proxy.port)
            assert await reader.read() == b""
            for writer in (first, second):
                writer.close()
    assert proxy.stats.connections == 1


async def test_closing_the_proxy_cuts_connections_that_stay_open(echo_port: int) -> None:
    proxy = CountingProxy("127.0.0.1", echo_port, close_timeout=0.05)
    await proxy.start()
    async with asyncio.timeout(wait_timeout()):
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        await proxy.close()
        assert await reader.read() == b""
    writer.close()


async def test_proxy_counts_an_http_request_and_its_response(server: RunningServer) -> None:
    async with CountingProxy(server.host, server.port) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url()) as http:
            reply = await http.get("/healthz")
    assert reply.json() == {"status": "ok"}
    # At least the request line and the body; the rest is headers.
    assert proxy.stats.bytes_up > len(b"GET /healthz HTTP/1.1\r\n")
    assert proxy.stats.bytes_down > len(reply.content)
