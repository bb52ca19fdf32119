"""The background runner: start on a free port, fail fast, replace by name, stop gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from conftest import wait_timeout
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server import Settings, create_app, runner, start, stop
from course_server.clients.misbehave import server_errors, stalled_reader


def test_goodbye_closes_the_registries_create_app_made(settings: Settings) -> None:
    app = create_app(settings)
    goodbye = runner.Goodbye.of(app)
    assert goodbye.peers is app.state.peers
    assert goodbye.sessions is app.state.sessions


def test_an_app_create_app_did_not_make_gets_no_goodbye_registries() -> None:
    assert runner.Goodbye.of(FastAPI()) == runner.Goodbye(peers=None, sessions=None)


def test_start_returns_once_the_server_answers(settings: Settings) -> None:
    with start(name="runner-answers", settings=settings) as server:
        assert server.port != 0
        assert server.http_url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}"
        # No retry: the very first request must succeed.
        assert httpx.get(server.url("/healthz")).json() == {"status": "ok"}


def test_port_in_use_raises_immediately(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            start(name="runner-port-in-use", settings=settings, port=port)
    assert "runner-port-in-use" not in runner.running_servers()


def test_failing_startup_raises_instead_of_hanging(settings: Settings) -> None:
    @asynccontextmanager
    async def broken(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    app = FastAPI(lifespan=broken)
    app.state.settings = Settings(jwt_secret="t", log_level="critical")
    with pytest.raises(RuntimeError, match="failed to start"):
        start(app, name="runner-broken", timeout=wait_timeout())
    assert "runner-broken" not in runner.running_servers()


def test_starting_a_running_name_replaces_the_old_server(settings: Settings) -> None:
    first = start(name="runner-replace", settings=settings)
    port = first.port
    second = start(name="runner-replace", settings=settings, port=port)
    try:
        assert not first.running
        assert second.running
        assert second.port == port  # the old server let go of its port
        assert httpx.get(second.url("/healthz")).status_code == 200
    finally:
        second.stop()


def test_stop_frees_the_thread_and_the_port(settings: Settings) -> None:
    server = start(name="runner-free", settings=settings)
    thread_names = {t.name for t in threading.enumerate()}
    assert "course-server:runner-free" in thread_names
    server.stop()
    assert not server.running
    assert "course-server:runner-free" not in {t.name for t in threading.enumerate()}
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))


def test_stop_by_name_and_of_unknown_name(settings: Settings) -> None:
    server = start(name="runner-by-name", settings=settings)
    stop("runner-by-name")
    assert not server.running
    stop("runner-never-started")  # no error


@pytest.mark.anyio
async def test_stop_closes_open_websockets_with_1001(settings: Settings) -> None:
    server = start(name="runner-1001", settings=settings)
    async with connect(server.ws("/ws/echo")) as websocket:
        await websocket.send("still here?")
        assert await websocket.recv() == "You said: still here?"
        await asyncio.to_thread(server.stop)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(wait_timeout()):
                await websocket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert closed.value.rcvd.reason == "Server shutting down"


@pytest.mark.anyio
async def test_works_when_the_caller_runs_an_event_loop(settings: Settings) -> None:
    """Like a Jupyter cell: start() is called from code whose loop is already running."""
    asyncio.get_running_loop()
    server = start(name="runner-in-loop", settings=settings)
    try:
        async with httpx.AsyncClient() as client:
            assert (await client.get(server.url("/healthz"))).json() == {"status": "ok"}
    finally:
        await asyncio.to_thread(server.stop)


def test_call_runs_a_coroutine_on_the_server_loop(settings: Settings) -> None:
    with start(name="runner-call", settings=settings) as server:

        async def server_loop_thread() -> str:
            return threading.current_thread().name

        assert server.call(server_loop_thread()) == "course-server:runner-call"


def test_call_on_a_stopped_server_raises(settings: Settings) -> None:
    server = start(name="runner-call-stopped", settings=settings)
    server.stop()

    async def nothing() -> None:
        return None

    with pytest.raises(RuntimeError, match="not running"):
        server.call(nothing())


def test_the_same_app_can_be_served_again_after_stop(settings: Settings) -> None:
    app = create_app(settings)
    first = start(app, name="runner-again")
    port = first.port
    first.stop()
    with start(app, name="runner-again", port=port) as second:
        assert httpx.get(second.url("/healthz")).json() == {"status": "ok"}


@pytest.mark.anyio
async def test_stop_drops_a_client_that_stopped_reading() -> None:
    """Its buffers are full, so no close frame can reach it: shutdown must not wait it out."""
    settings = Settings(jwt_secret="t", send_queue_size=8)
    server = start(name="runner-stalled", settings=settings)
    async with await stalled_reader(server.ws("/ws/broadcast")):
        async with connect(server.ws("/ws/broadcast"), max_size=None) as sender:
            # The sender hears its own broadcasts: it must keep reading, unlike the stalled one.
            reader = asyncio.create_task(_read_until_closed(sender))
            for _ in range(100):  # ~6 MB: more than the stalled client's buffers hold
                await sender.send("x" * 60_000)
            with server_errors() as errors:
                await asyncio.to_thread(server.stop)
            await reader
    assert not server.running
    assert [e for e in errors if "graceful shutdown" in e.message] == []


async def _read_until_closed(websocket: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(wait_timeout()):
            async for _ in websocket:
                pass
