"""The Security contract's floods, attacked: every channel is rate-limited, one budget per user.

Each test floods one channel from one client as fast as it can and counts, at a bystander,
the messages the server relayed. A token bucket lets through at most its burst plus its rate
times the time the flood lasted; the bound asserted is exactly that, from the flood's measured
duration (on main, 91,215 messages went through ``/ws/lobby`` in 3 s). The server runs at
``rate_limit=1``: each connection a burst of 2, each user (or guest address) 2/s, a burst of 4.
The last test runs the flood command, ``python -m benchmarks.floods``, short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks import floods
from course_server import RunningServer, Settings, start
from course_server.security.tokens import create_access_token

pytestmark = pytest.mark.anyio

SECRET = "test-secret-not-for-production-0123456789"
RATE = 1.0
CONNECTION_BURST = 2 * RATE
USER_RATE, USER_BURST = 2 * RATE, 4 * RATE
FLOOD = 300  # frames a flooder sends: far past any budget


@pytest.fixture
def slow() -> Iterator[RunningServer]:
    """A fresh server per test: budgets are per address, so tests must not share one."""
    settings = Settings(jwt_secret=SECRET, rate_limit=RATE)
    with start(name="test-security-ratelimit", settings=settings) as running:
        yield running


def signed_in(path: str, user: str) -> str:
    return f"{path}?token={create_access_token(user, SECRET, 60)}"


async def flood(websocket: ClientConnection, frame: str) -> tuple[int, float]:
    """Send ``frame`` up to FLOOD times, until the server closes; frames sent and seconds taken."""
    began = time.monotonic()
    sent = 0
    with contextlib.suppress(ConnectionClosed):
        for _ in range(FLOOD):
            await websocket.send(frame)
            sent += 1
    return sent, time.monotonic() - began


async def closed(websocket: ClientConnection) -> tuple[int | None, list[str]]:
    """Read until the server closes: the close code and the frames received before it."""
    frames = []
    async with asyncio.timeout(wait_timeout()):
        with contextlib.suppress(ConnectionClosed):
            while True:
                frames.append(str(await websocket.recv()))
    return websocket.close_code, frames


async def recv_until(websocket: ClientConnection, last: str) -> list[str]:
    """Frames up to and including the first that contains ``last``."""
    frames: list[str] = []
    async with asyncio.timeout(wait_timeout()):
        while not frames or last not in frames[-1]:
            frames.append(str(await websocket.recv()))
    return frames


def bound(rate: float, burst: float, seconds: float) -> float:
    """The most a token bucket lets through in ``seconds``: its burst, then its rate."""
    return burst + rate * seconds + 1  # +1: a token that refilled while the count was read


# --- /ws/broadcast: no error frame in its protocol, so a flood is closed with 1008 ---------


async def test_a_broadcast_flood_is_closed_1008_and_relays_at_most_the_burst(
    slow: RunningServer,
) -> None:
    url = slow.ws("/ws/broadcast")
    async with connect(url) as bystander, connect(url) as flooder:
        sent, seconds = await flood(flooder, "spam")
        code, _ = await closed(flooder)
        frames = await recv_until(bystander, "A user left the chat")
    relayed = frames.count("Someone said: spam")
    print(f"/ws/broadcast: {relayed} relayed of {sent} sent in {seconds:.3f} s")
    assert code == 1008
    assert relayed <= bound(RATE, CONNECTION_BURST, seconds)


async def test_reconnecting_after_each_1008_does_not_refill_the_budget(
    slow: RunningServer,
) -> None:
    url = slow.ws("/ws/broadcast")
    # The bystander signs in: its budget is its own, so the flooder's address has no other
    # connection holding its budget open between two of the flooder's connections.
    async with connect(slow.ws(signed_in("/ws/broadcast", "bob"))) as bystander:
        began, sent = time.monotonic(), 0
        for _ in range(20):
            async with connect(url) as flooder:
                sent += (await flood(flooder, "spam"))[0]
                await closed(flooder)
        seconds = time.monotonic() - began
        await bystander.send("end")
        frames = await recv_until(bystander, "Someone said: end")
    relayed = frames.count("Someone said: spam")
    print(f"/ws/broadcast, 20 reconnects: {relayed} relayed of {sent} sent in {seconds:.3f} s")
    assert relayed <= bound(USER_RATE, USER_BURST, seconds)


# --- /ws/lobby: rate_limited errors, then 1008 ----------------------------------------------


async def test_a_lobby_flood_gets_rate_limited_errors_then_1008(slow: RunningServer) -> None:
    url = slow.ws("/ws/lobby")
    join = json.dumps({"type": "join", "room": "flooded"})
    async with connect(url) as bystander, connect(url) as flooder:
        await bystander.send(join)
        assert json.loads((await recv_until(bystander, "presence"))[-1])["count"] == 1
        await flooder.send(join)
        sent, seconds = await flood(flooder, json.dumps({"type": "message", "content": "spam"}))
        code, answers = await closed(flooder)
        frames = await recv_until(bystander, "A user left the room")
    relayed = sum(json.loads(f).get("content") == "spam" for f in frames)
    errors = [json.loads(f).get("code") for f in answers if json.loads(f)["type"] == "error"]
    print(f"/ws/lobby: {relayed} relayed of {sent} sent in {seconds:.3f} s")
    assert code == 1008
    assert errors and set(errors) == {"rate_limited"}
    # The join took a token too: every frame counts, whatever it asks for.
    assert relayed <= bound(RATE, CONNECTION_BURST, seconds)


# --- /ws/users/{id}: rate_limited errors, then 1008 -----------------------------------------


async def test_a_private_message_flood_gets_rate_limited_errors_then_1008(
    slow: RunningServer,
) -> None:
    spam = json.dumps({"type": "private_message", "to": "ana", "message": "spam"})
    async with connect(slow.ws("/ws/users/ana")) as ana, connect(slow.ws("/ws/users/x")) as x:
        sent, seconds = await flood(x, spam)
        code, answers = await closed(x)
        # A signed-in user has a budget of her own: her note marks the end of the flood for ana.
        async with connect(slow.ws(signed_in("/ws/users/bob", "bob"))) as bob:
            await bob.send(json.dumps({"type": "private_message", "to": "ana", "message": "end"}))
            frames = await recv_until(ana, "From bob: end")
    relayed = frames.count("From x: spam")
    print(f"/ws/users: {relayed} relayed of {sent} sent in {seconds:.3f} s")
    assert code == 1008
    assert any(json.loads(a).get("code") == "rate_limited" for a in answers)
    assert relayed <= bound(RATE, CONNECTION_BURST, seconds)


# --- one budget per user: more names or connections do not multiply it -----------------------


@asynccontextmanager
async def chat_members(
    server: RunningServer, room: str, names: list[str]
) -> AsyncIterator[list[ClientConnection]]:
    """Members of ``room``, each past its own join."""
    async with AsyncExitStack() as stack:
        members = []
        for name in names:
            # No limit on frames waiting to be read: a flooder reads none of its own.
            url = server.ws(f"/chat/{room}/{name}")
            websocket = await stack.enter_async_context(connect(url, max_queue=None))
            async with asyncio.timeout(wait_timeout()):
                while json.loads(await websocket.recv()).get("username") != name:
                    pass
            members.append(websocket)
        yield members


async def test_twenty_guest_names_from_one_address_share_one_budget(slow: RunningServer) -> None:
    names = [f"guest{i}" for i in range(20)]
    message = json.dumps({"type": "message", "content": "spam"})
    async with chat_members(slow, "many", ["watcher"]) as [watcher]:
        async with chat_members(slow, "many", names) as flooders:
            began = time.monotonic()
            for _ in range(3):  # each name within its own connection's burst and strikes
                await asyncio.gather(*(f.send(message) for f in flooders))
            seconds = time.monotonic() - began
        relayed, left = 0, 0
        async with asyncio.timeout(wait_timeout()):
            while left < len(names):
                event = json.loads(await watcher.recv())
                relayed += event["type"] == "message"
                left += event["type"] == "leave"
    print(f"20 guest names: {relayed} relayed of {3 * len(names)} sent in {seconds:.3f} s")
    assert relayed <= bound(USER_RATE, USER_BURST, seconds)


async def test_a_signed_in_users_budget_is_hers_not_her_addresss(slow: RunningServer) -> None:
    message = json.dumps({"type": "message", "content": "hi"})
    names = [f"guest{i}" for i in range(int(USER_BURST))]
    async with chat_members(slow, "shared", names) as guests:
        for name, guest in zip(names, guests, strict=True):  # the address's whole guest budget
            await guest.send(message)
            await recv_until(guests[0], f'"username":"{name}","content"')
        await guests[0].send(message)  # its connection has a token left, the address has none
        frames = await recv_until(guests[0], "rate_limited")
        async with (
            chat_members(slow, "shared", []) as _,
            connect(slow.ws(signed_in("/chat/shared/alice", "alice"))) as alice,
        ):
            await recv_until(alice, '"username":"alice"')  # her join
            await alice.send(message)
            answer = json.loads((await recv_until(alice, '"content":"hi"'))[-1])
    assert json.loads(frames[-1])["code"] == "rate_limited"
    assert (answer["type"], answer["username"]) == ("message", "alice")


# --- the flood command (benchmarks/floods.py), run short ------------------------------------


async def test_the_flood_command_finds_every_channel_within_its_bound() -> None:
    seconds = 0.3
    settings = Settings(jwt_secret=floods.SECRET)
    with start(name="test-floods", settings=settings) as server:
        rows = await floods.measure(server, seconds)
    limit = bound(2 * settings.rate_limit, 4 * settings.rate_limit, seconds)
    assert [label for label, _, _ in rows] == [
        "/ws/broadcast",
        "/ws/lobby",
        "/ws/users/{id}",
        "chat, 20 guest names",
    ]
    assert all(relayed <= limit < sent for _, relayed, sent in rows), rows
