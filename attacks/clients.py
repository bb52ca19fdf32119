"""The attacker's clients: raw sockets and ordinary ones, all bounded in time and to loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import httpx

from course_server.clients.handshake import upgrade_request
from course_server.clients.websocket import attempt
from course_server.urls import ServerURLs

TIMEOUT = 5.0  # seconds any single answer may take


def port_of(server: ServerURLs) -> int:
    return int(server.http_url.rsplit(":", 1)[1])


async def refusal(
    server: ServerURLs, path: str, *, headers: Mapping[str, str] | None = None
) -> str:
    """How the server ends a WebSocket that should not get through (``clients.attempt``):
    ``close 4003 why``, ``HTTP 403`` or, if it is still open after ``TIMEOUT``, ``open``."""
    try:
        seen = await attempt(server.ws(path), timeout=TIMEOUT, additional_headers=headers)
    except TimeoutError:
        return "open"
    if not seen.accepted:
        return f"HTTP {seen.http_status}"
    return f"close {seen.close_code} {seen.close_reason or ''}".strip()


async def raw_request(server: ServerURLs, request: bytes) -> str:
    """Send ``request`` as raw bytes (any Host, any header); return the response's status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            line = await reader.readline()
        return line.decode("latin-1").strip() or "(connection closed)"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def handshake(host: str, port: int, path: str, origin: str) -> bytes:
    """Lesson 01's hand-written upgrade request, for any ``Host``, with an ``Origin`` header."""
    request = upgrade_request(host, port, path)
    return request.removesuffix(b"\r\n") + f"Origin: {origin}\r\n\r\n".encode()


async def token(server: ServerURLs, username: str, password: str) -> str:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(
            server.url("/token"), data={"username": username, "password": password}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


async def session_cookie(server: ServerURLs, username: str, password: str) -> str:
    """Sign in with ``POST /session``; the value of the session cookie it sets."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(
            server.url("/session"), data={"username": username, "password": password}
        )
        response.raise_for_status()
        return str(response.cookies["session"])
