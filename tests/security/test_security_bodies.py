"""Bodies are bounded: over ``COURSE_MAX_MESSAGE_BYTES`` → 413, before the body is read whole.

Spoken over a raw socket, as an attacker would: a ``Content-Length`` of 40 MiB followed by no
body at all still gets its 413, which shows the server never waited for (let alone held) the
body; a chunked body gets its 413 while the client has not finished sending it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import wait_timeout

from course_server import RunningServer, Settings, start

pytestmark = pytest.mark.anyio

LIMIT = 65536  # the default COURSE_MAX_MESSAGE_BYTES
ENDPOINTS = ["/feed/publish", "/notifications", "/token", "/session", "/healthz"]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    settings = Settings(jwt_secret="body-limit-tests-" * 2)
    assert settings.max_message_bytes == LIMIT
    with start(name=f"test-{__name__}", settings=settings) as running:
        yield running


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def raw(server: RunningServer) -> AsyncIterator[Connection]:
    address = urlsplit(server.http_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        yield reader, writer
    finally:
        writer.close()


FORMS = {"/token", "/session"}


def head(path: str, **headers: str) -> bytes:
    kind = "application/x-www-form-urlencoded" if path in FORMS else "application/json"
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {kind}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status and headers of the response the server sends (its body is not needed)."""
    async with asyncio.timeout(wait_timeout()):
        raw_head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines if line)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Does the server close the connection (EOF) rather than wait for more of the body?"""
    async with asyncio.timeout(wait_timeout()):
        while await reader.read(65536):
            pass
    return True


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_declared_length_over_the_limit_is_413_with_no_body_sent(
    server: RunningServer, path: str
) -> None:
    async with raw(server) as (reader, writer):
        writer.write(head(path, Content_Length=str(40 * 1024 * 1024)))
        await writer.drain()
        status, headers = await response(reader)
        assert status == 413
        assert headers["connection"] == "close"
        assert await closed_by_server(reader)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize("path", ["/feed/publish", "/token"])
async def test_a_chunked_body_is_refused_once_it_passes_the_limit_unfinished(
    server: RunningServer, path: str
) -> None:
    async with raw(server) as (reader, writer):
        writer.write(head(path, Transfer_Encoding="chunked"))
        for _ in range(LIMIT // 16384 + 1):  # one chunk over the limit, and no final chunk
            writer.write(chunk(b"x" * 16384))
        await writer.drain()
        status, headers = await response(reader)
        assert status == 413
        assert headers["connection"] == "close"
        assert await closed_by_server(reader)


async def test_a_chunked_body_within_the_limit_is_served(server: RunningServer) -> None:
    async with raw(server) as (reader, writer):
        writer.write(head("/feed/publish", Transfer_Encoding="chunked"))
        writer.write(chunk(b'{"data": "') + chunk(b"y" * 30000) + chunk(b'"}') + chunk(b""))
        await writer.drain()
        status, _ = await response(reader)
    assert status == 200


async def test_a_declared_length_at_the_limit_is_read(server: RunningServer) -> None:
    body = b'{"data": "' + b"z" * (LIMIT - 13) + b'"}'
    assert len(body) == LIMIT - 1
    async with raw(server) as (reader, writer):
        writer.write(head("/feed/publish", Content_Length=str(len(body))) + body)
        await writer.drain()
        status, _ = await response(reader)
    assert status == 200


async def test_many_large_bodies_at_once_are_all_refused(server: RunningServer) -> None:
    async def one() -> int:
        async with raw(server) as (reader, writer):
            writer.write(head("/feed/publish", Content_Length=str(2 * 1024 * 1024)))
            writer.write(b"w" * 65536)  # a start on the 2 MiB, which the server does not await
            await writer.drain()
            return (await response(reader))[0]

    assert await asyncio.gather(*(one() for _ in range(25))) == [413] * 25


async def test_a_client_that_sends_its_whole_large_body_still_reads_the_413(
    server: RunningServer,
) -> None:
    """The server drops the rest of a refused body before closing, so no reset hides the 413."""

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"v" * 65536

    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        declared = await http.post(server.url("/feed/publish"), content=b"u" * (4 * 1024 * 1024))
        chunked = await http.post(server.url("/feed/publish"), content=stream())
    assert (declared.status_code, chunked.status_code) == (413, 413)
