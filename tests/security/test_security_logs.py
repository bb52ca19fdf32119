"""Secrets stay out of logs: no token or cookie value in any log line, at any level.

The attack: authenticate every way the server allows, spelling the token's parameter every way
a server decodes (``%74oken``, ``ToKeN``, repeated), and read the log. The main test runs a real
``python -m course_server`` at debug and at trace level (where the ``websockets`` library prints
every handshake header and uvicorn every ASGI scope) and greps all it wrote for the secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect

from course_server.security import redaction
from course_server.security.redaction import REDACTED
from course_server.security.tokens import SESSION_COOKIE
from course_server.urls import ServerURLs

pytestmark = pytest.mark.anyio

LOGIN = {"username": "alice", "password": "wonderland"}


async def login(process: ServerURLs) -> tuple[str, str]:
    """A token from ``POST /token`` and a cookie value from ``POST /session``."""
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        token = (await http.post(process.url("/token"), data=LOGIN)).json()["access_token"]
        response = await http.post(process.url("/session"), data=LOGIN)
        return token, response.cookies[SESSION_COOKIE]


async def authenticate_every_way(process: ServerURLs, token: str, cookie: str) -> None:
    """Use the secrets the ways a client may (and a few it may not): each must work or fail."""
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        for query in (f"%74oken={token}", f"ToKeN={token}", f"token=x&token={token}"):
            await http.get(process.url(f"/healthz?{query}"))
        await http.get(process.url("/session"), headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        await http.get(process.url("/healthz"), headers={"Authorization": f"Bearer {token}"})
    async with asyncio.timeout(wait_timeout()):
        for query in (f"%74oken={token}", f"token={token}", f"token=a&token={token}"):
            async with connect(process.ws(f"/secure/ws?{query}")) as websocket:
                assert "auth_success" in await websocket.recv()
        cookies = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        async with connect(process.ws("/secure/ws/cookie"), additional_headers=cookies) as ws:
            assert "auth_success" in await ws.recv()
        async with connect(process.ws("/secure/ws/v2")) as websocket:
            await websocket.send(f'{{"type": "auth", "token": "{token}"}}')
            assert "auth_success" in await websocket.recv()


def secret_parts(*secrets: str) -> list[str]:
    """Each secret, and each of a JWT's three parts: a log must not show any of them."""
    return [part for secret in secrets for part in (secret, *secret.split(".")) if len(part) > 8]


@contextlib.contextmanager
def logging_server(level: str, log: Path) -> Iterator[ServerURLs]:
    """``python -m course_server`` writing all it logs, stdout (the access log) and stderr, to
    ``log``: ``processes.spawn`` keeps only stderr."""
    command = [sys.executable, "-m", "course_server", "--port", "0", "--log-level", level]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + wait_timeout(20)
        while not (found := re.search(r"serving on (http://\S+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # another process's output: no event to wait on
        server = ServerURLs()
        server.http_url = found[1]
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(wait_timeout(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("level", ["debug", "trace"])
def test_no_secret_reaches_the_log_of_a_debug_server(level: str, tmp_path: Path) -> None:
    with logging_server(level, tmp_path / "server.log") as server:
        token, cookie = asyncio.run(login(server))
        asyncio.run(authenticate_every_way(server, token, cookie))
    log = (tmp_path / "server.log").read_text()
    assert "GET /healthz?%74oken=[REDACTED]" in log  # the requests were logged, redacted
    assert any("cookie" in line.lower() and REDACTED in line for line in log.splitlines())
    leaks = [
        line for line in log.splitlines() if any(s in line for s in secret_parts(token, cookie))
    ]
    assert leaks == []


def test_every_logger_is_redacted_not_only_uvicorns(caplog: pytest.LogCaptureFixture) -> None:
    """The record factory ``install()`` sets: a library's own logger gets the same treatment."""
    redaction.install()
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ"
    with caplog.at_level(logging.DEBUG, logger="some.library"):
        logger = logging.getLogger("some.library")
        logger.debug("< Cookie: %s", f"{SESSION_COOKIE}={jwt}")
        logger.debug("%s?%s=%s", "/secure/ws", "%74oken", "opaque-value")
        logger.debug("headers %s", [(b"cookie", b"session=opaque-cookie")])
    assert [r.getMessage() for r in caplog.records] == [
        "< Cookie: [REDACTED]",
        "/secure/ws?%74oken=[REDACTED]",
        "headers [(b'cookie', b'[REDACTED]')]",
    ]


def test_a_traceback_is_redacted_too(caplog: pytest.LogCaptureFixture) -> None:
    redaction.install()
    try:
        raise ValueError("bad request /secure/ws?token=opaque-value")
    except ValueError:
        logging.getLogger("some.library").exception("failed")
    assert "opaque-value" not in caplog.text
    assert "token=[REDACTED]" in caplog.text
