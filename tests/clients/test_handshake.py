"""The opening handshake by hand (``course_server.clients.handshake``), against the real server."""

from __future__ import annotations

import asyncio

import pytest
from conftest import wait_timeout

from course_server import RunningServer
from course_server.clients.handshake import (
    SAMPLE_KEY,
    Handshake,
    accept_key,
    open_handshake,
    printable,
    upgrade_request,
)

pytestmark = pytest.mark.anyio


def test_accept_key_matches_the_rfc_6455_example() -> None:
    assert accept_key(SAMPLE_KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_upgrade_request_is_the_exact_bytes_sent() -> None:
    assert upgrade_request("127.0.0.1", 8000, "/ws/echo") == (
        b"GET /ws/echo HTTP/1.1\r\n"
        b"Host: 127.0.0.1:8000\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )


async def test_server_switches_protocols_with_the_accept_computed_by_hand(
    server: RunningServer,
) -> None:
    async with asyncio.timeout(wait_timeout()):
        handshake = await open_handshake(server.host, server.port)
    assert handshake.status == 101
    assert handshake.header("Upgrade") == "websocket"
    assert handshake.header("sec-websocket-accept") == accept_key(SAMPLE_KEY)
    assert handshake.response.endswith(b"\r\n\r\n")


async def test_a_fresh_key_gets_its_own_accept(server: RunningServer) -> None:
    key = "AQIDBAUGBwgJCgsMDQ4PEA=="
    async with asyncio.timeout(wait_timeout()):
        handshake = await open_handshake(server.host, server.port, key=key)
    assert handshake.header("Sec-WebSocket-Accept") == accept_key(key)


async def test_a_path_with_no_websocket_route_is_refused_without_101(
    server: RunningServer,
) -> None:
    async with asyncio.timeout(wait_timeout()):
        handshake = await open_handshake(server.host, server.port, "/nowhere")
    assert handshake.status == 403
    assert handshake.header("Sec-WebSocket-Accept") is None


def test_printable_masks_the_date_and_nothing_else() -> None:
    response = b"HTTP/1.1 101 Switching Protocols\r\ndate: Wed, 01 Jan 2025 00:00:00 GMT\r\n\r\n"
    assert printable(response) == "HTTP/1.1 101 Switching Protocols\ndate: <varies>"


def test_header_lookup_ignores_case_and_returns_none_when_missing() -> None:
    handshake = Handshake(request=b"", response=b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r\n")
    assert handshake.header("UPGRADE") == "websocket"
    assert handshake.header("Date") is None
