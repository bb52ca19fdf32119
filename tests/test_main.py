"""``python -m course_server``: prints its URL and serves the full app until interrupted."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


@pytest.fixture
def process_url() -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "COURSE_JWT_SECRET": "test-secret", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "course_server", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket is bound
        match = re.search(r"serving on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"unexpected first line: {line!r}"
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(wait_timeout(10))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _get_when_up(url: str) -> httpx.Response:
    """The URL is printed before uvicorn finishes starting: retry refused connects briefly."""
    with httpx.Client(transport=httpx.HTTPTransport(retries=20)) as client:
        return client.get(url, timeout=wait_timeout())


def test_serves_healthz(process_url: tuple[subprocess.Popen[str], str]) -> None:
    _, url = process_url
    assert _get_when_up(url + "/healthz").json() == {"status": "ok"}


@pytest.mark.anyio
async def test_serves_echo_and_room_websockets(
    process_url: tuple[subprocess.Popen[str], str],
) -> None:
    _, url = process_url
    _get_when_up(url + "/healthz")
    ws_url = url.replace("http", "ws", 1)
    async with connect(ws_url + "/ws/echo") as websocket:
        await websocket.send("hello")
        assert await websocket.recv() == "You said: hello"
        await websocket.send(b"\x00\xff")
        assert await websocket.recv() == b"\x00\xff"
    async with connect(ws_url + "/ws/rooms/lobby") as websocket:
        await websocket.send("hello")
        assert await websocket.recv() == "[lobby] hello"


@pytest.mark.anyio
async def test_ctrl_c_closes_websockets_with_1001_and_exits_cleanly(
    process_url: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = process_url
    _get_when_up(url + "/healthz")
    async with connect(url.replace("http", "ws", 1) + "/ws/echo") as websocket:
        await websocket.send("hi")
        await websocket.recv()
        process.send_signal(signal.SIGINT)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(wait_timeout()):
                await websocket.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert await asyncio.to_thread(process.wait, wait_timeout()) == 0


def test_warns_without_a_jwt_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COURSE_JWT_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "course_server", "--port", "-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=wait_timeout(20),
    )
    assert "COURSE_JWT_SECRET is not set" in result.stderr
    assert result.returncode != 0  # port -1 cannot be bound


def test_help_lists_the_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "course_server", "--help"],
        capture_output=True,
        text=True,
        timeout=wait_timeout(20),
    )
    for flag in ("--host", "--port", "--redis-url"):
        assert flag in result.stdout
