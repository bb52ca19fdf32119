"""Heartbeats (lesson 09): protocol pings that must be answered, and the chat's ``ping``/``pong``.

A client that stops answering WebSocket pings is dropped within interval + timeout, and its room
presence goes with it. The seed's heartbeat (``course_server.seed.heartbeat``) sends frames that
nobody has to answer, so it notices nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from browser import wait_for
from conftest import eventually, wait_timeout
from playwright.sync_api import BrowserContext
from websockets.asyncio.client import connect
from websockets.frames import Opcode

from course_server import RunningServer, Settings, start
from course_server.clients.misbehave import RawClient, stalled_reader

pytestmark = pytest.mark.anyio

INTERVAL = TIMEOUT = 0.2


@pytest.fixture
def pinging() -> Iterator[RunningServer]:
    """A server that pings every 0.2 s and gives up on a peer after 0.2 s without a pong."""
    settings = Settings(ws_ping_interval=INTERVAL, ws_ping_timeout=TIMEOUT)
    with start(name="heartbeat-pinging", settings=settings) as server:
        yield server


def users(server: RunningServer, room: str) -> list[str]:
    return server.app.state.chat_rooms.users(room)


async def test_a_client_that_never_answers_pings_leaves_the_room_in_time(
    pinging: RunningServer,
) -> None:
    async with connect(pinging.ws("/chat/general/ana")) as ana:
        ghost = await stalled_reader(pinging.ws("/chat/general/ghost"))
        joined = time.monotonic()
        await eventually(lambda: users(pinging, "general") == ["ana", "ghost"])
        await eventually(lambda: users(pinging, "general") == ["ana"])
        gone_after = time.monotonic() - joined
        # ana's client answers pings by itself: she is still there, and saw ghost leave.
        frames = [json.loads(await ana.recv()) for _ in range(3)]
        assert [(f["type"], f["username"]) for f in frames] == [
            ("join", "ana"),
            ("join", "ghost"),
            ("leave", "ghost"),
        ]
    # Detected within one interval and one timeout, plus scheduling slack.
    assert INTERVAL <= gone_after < INTERVAL + TIMEOUT + wait_timeout(1)
    resumed = await ghost.resume(timeout=wait_timeout())
    assert (resumed.close_code, resumed.close_reason) == (1011, "keepalive ping timeout")


async def answer_pings(client: RawClient, count: int) -> None:
    """Read like a live client (the protocol answers each ping) until ``count`` pings came."""
    loop = asyncio.get_running_loop()
    pings = 0
    while pings < count:
        client.protocol.receive_data(await loop.sock_recv(client.sock, 1 << 16))
        pings += sum(e.opcode is Opcode.PING for e in client.protocol.events_received())
        for chunk in client.protocol.data_to_send():
            await loop.sock_sendall(client.sock, chunk)


async def test_a_client_that_answers_pings_stays(pinging: RunningServer) -> None:
    client = await RawClient.connect(pinging.ws("/chat/general/reader"))
    try:
        async with asyncio.timeout(wait_timeout()):
            await answer_pings(client, 3)  # three rounds: longer than interval + timeout
        assert users(pinging, "general") == ["reader"]
    finally:
        client.vanish()


async def test_the_chat_answers_an_app_ping_with_a_pong_and_spends_no_id(
    server: RunningServer,
) -> None:
    async with connect(server.ws("/chat/general/ana")) as ana:
        assert json.loads(await ana.recv())["id"] == 1
        await ana.send('{"type": "ping"}')
        assert json.loads(await ana.recv()) == {"type": "pong"}
        await ana.send('{"type": "message", "content": "after"}')
        assert json.loads(await ana.recv())["id"] == 2


async def test_pings_count_against_the_rate_limit(settings: Settings) -> None:
    strict = Settings(jwt_secret=settings.jwt_secret, rate_limit=0.5)
    with start(name="heartbeat-strict", settings=strict) as server:
        async with connect(server.ws("/chat/general/ana")) as ana:
            await ana.recv()
            await ana.send('{"type": "ping"}')
            await ana.send('{"type": "ping"}')
            frames = [json.loads(await ana.recv()) for _ in range(2)]
    assert [f.get("code", f["type"]) for f in frames] == ["pong", "rate_limited"]


# The seed's heartbeat, which detects nothing ---------------------------------------------------


def unread_bytes(client: RawClient) -> int:
    """Bytes waiting in the client's receive buffer, read without taking them."""
    try:
        return len(client.sock.recv(1 << 16, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return 0


async def test_the_seed_heartbeat_keeps_a_silent_client_forever(settings: Settings) -> None:
    quiet = Settings(jwt_secret=settings.jwt_secret, ws_ping_interval=0)  # no protocol pings
    with start(name="heartbeat-seed", settings=quiet) as server:
        silent = await RawClient.connect(server.ws("/naive/ws/heartbeat?interval=0.01"))
        try:
            heartbeat = len(b'\x81\x13{"type":"heartbeat"}')
            # Twenty heartbeats went out, every send "succeeded", nobody read one...
            await eventually(lambda: unread_bytes(silent) >= 20 * heartbeat)
            # ...and the server still counts the connection as alive.
            assert len(server.app.state.sessions) == 1
        finally:
            silent.vanish()


async def test_the_seed_robust_endpoint_blames_itself_for_a_binary_frame(
    server: RunningServer,
) -> None:
    async with connect(server.ws("/naive/ws/robust")) as client:
        await client.send(b"\x00")
        async with asyncio.timeout(wait_timeout()):
            await client.wait_closed()
    assert (client.close_code, client.close_reason) == (1011, "Internal error")


# The chat page's app-level heartbeat, on a fake clock ----------------------------------------


@contextlib.contextmanager
def loop_held(server: RunningServer) -> Iterator[None]:
    """Block the server's event loop (as a frozen server would) until the block ends."""
    started, release = threading.Event(), threading.Event()

    async def hog() -> None:
        started.set()
        release.wait(wait_timeout(10))  # blocks the loop on purpose

    holder = threading.Thread(target=server.call, args=(hog(), wait_timeout(20)))
    holder.start()
    try:
        assert started.wait(wait_timeout())
        yield
    finally:
        release.set()
        holder.join()


@pytest.mark.browser
def test_the_page_pings_a_quiet_connection_and_reconnects_when_nothing_answers(
    browser_context: BrowserContext, server: RunningServer
) -> None:
    page = browser_context.new_page()
    page.clock.install()  # the page's timers run on a clock the test can move
    sent: list[str | bytes] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    page.goto(server.url("/?room=general&name=ana"))
    wait_for(page, "s => s.state === 'open'")

    page.clock.fast_forward(30_000)  # 30 s of silence: the page pings, the server answers
    wait_for(page, "s => s.pongs === 1")
    page.clock.fast_forward(15_000)  # past the pong deadline: still open
    wait_for(page, "s => s.state === 'open' && s.connects === 1")
    assert sent == ['{"type":"ping"}']

    with loop_held(server):  # now nothing answers, and the server cannot close anything
        page.clock.fast_forward(26_000)
        page.clock.fast_forward(11_000)
        wait_for(page, "s => s.state !== 'open'")  # so the page gave its socket up itself
    assert sent.count('{"type":"ping"}') == 2
    page.clock.fast_forward(1_000)  # the backoff (under 250 ms for a first retry)
    # (It may first hear "Username taken": its old connection is gone only once the server runs.)
    wait_for(page, "s => s.state === 'open' && s.connects >= 2")
