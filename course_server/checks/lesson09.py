"""Checks for lesson 09's exercises: a heartbeat that expects an answer, and names safe to show.

The heartbeat's timings are the notebook's (``PING_AFTER``, ``PONG_WITHIN`` and
``HEARTBEAT_TIMEOUT`` below must stay equal to the exercise cell's). They are half a second so
the checks are quick, and long enough that a check's own client, on a busy machine, answers a
ping in time. A check measures only what cannot come early (a ping or a close before its time);
"late" gets a generous margin.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from fastapi import WebSocket
from websockets.exceptions import ConnectionClosed

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.checks.talk import WAIT, dial, receive
from course_server.clients import attempt
from course_server.closing import MAX_REASON_BYTES

PING_AFTER = 0.5
PONG_WITHIN = 0.5
HEARTBEAT_TIMEOUT = 4408

# --- 09.1 a heartbeat that expects an answer -------------------------------------------------

heartbeat = exercise(
    "09.1",
    "A heartbeat that expects an answer",
    target="watchdog",
    references=(
        "course_server.heartbeat:heartbeat",
        "course_server.heartbeat:websocket_with_heartbeat",
        "course_server.heartbeat:robust_websocket",
    ),
)


async def serve_watchdog(h: Harness, endpoint: Any) -> str:
    h.websocket("/watch", endpoint)
    server = await h.serve()
    return server.ws("/watch")


@heartbeat.check(f"a quiet client is pinged after {PING_AFTER:g} s of silence")
async def _pinged(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        started = time.monotonic()
        frame = await receive(client, "a quiet client", wait=PING_AFTER + WAIT, harness=h)
        took = time.monotonic() - started
    expect(frame == "ping", f"a client that sent nothing got {frame!r} first, not 'ping'")
    expect(
        took >= PING_AFTER * 0.8,
        f"the ping came {took:.2f} s after connecting: wait for PING_AFTER s of silence first",
    )


@heartbeat.check("a client that answers every ping stays connected", timeout=8)
async def _answered(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        started = time.monotonic()
        frames: list[Any] = []
        try:
            while time.monotonic() - started < 3 * PING_AFTER:
                try:
                    async with asyncio.timeout(PING_AFTER + WAIT):
                        frames.append(await client.recv())
                except TimeoutError:
                    raise CheckFailed(f"after {frames}, no ping came") from None
                expect(frames[-1] == "ping", f"a client that only answered pings got {frames}")
                await client.send("pong")
            await client.send("still here")
            while (reply := await receive(client, "the client", harness=h)) == "ping":
                await client.send("pong")
        except ConnectionClosed:
            took = time.monotonic() - started
            raise CheckFailed(
                f"a client that answered each ping with 'pong' at once was closed after "
                f"{took:.2f} s (code {client.close_code}), having got {frames}: a pong is a "
                "sign of life"
            ) from None
    expect(reply == "still here", f"after the pings, 'still here' got {reply!r}, not its echo")


@heartbeat.check(f"a client that does not answer is closed with {HEARTBEAT_TIMEOUT}")
async def _silent(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    within = PING_AFTER + PONG_WITHIN + WAIT
    started = time.monotonic()
    try:
        seen = await attempt(url, timeout=within, open_timeout=WAIT, close_timeout=0.5)
    except TimeoutError:
        hint = f"a client that never answered was still connected {within:g} s later"
        raise CheckFailed(hint) from None
    took = time.monotonic() - started
    expect(seen.accepted, f"the handshake was refused with HTTP {seen.http_status}: accept first")
    expect(seen.received == ["ping"], f"a client that never answered: {seen}; ping it once")
    expect(
        seen.close_code == HEARTBEAT_TIMEOUT,
        f"a client that never answered was closed with {seen.close_code}, not "
        f"{HEARTBEAT_TIMEOUT} (HEARTBEAT_TIMEOUT)",
    )
    expect(
        took >= (PING_AFTER + PONG_WITHIN) * 0.8,
        f"closed {took:.2f} s after connecting: give the client PONG_WITHIN s after the ping",
    )


@heartbeat.check("a client that keeps talking is never pinged, and hears each message back")
async def _talking(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        for n in range(12):  # over 1.2 s, twice PING_AFTER, never quiet for more than 0.1 s
            await client.send(f"message {n}")
            reply = await receive(client, "a talking client", harness=h)
            expect(
                reply == f"message {n}",
                f"a client that sent a message every 0.1 s sent 'message {n}' and got {reply!r}: "
                "any message is a sign of life",
            )
            await asyncio.sleep(0.1)  # the pace of the conversation: the time between messages


# --- 09.2 names that are safe to show --------------------------------------------------------

names = exercise(
    "09.2",
    "Names that are safe to show",
    target="name_problem",
    references=("course_server.messages:name_problem", "course_server.messages:NAME_PATTERN"),
)

GOOD = ["alice", "Zoë", "Ωμέγα_2", "名前", "a.b-c", "x" * 32, "é" * 32]
BAD = ["", "x" * 33, "y" * 200, "alice smith", "<script>", "a/b", "bob;drop", "'; --"]
INVISIBLE = ["alice\u200b", "alice\n", "\u202eecila", "bob\x00", "tab\t", "soft\u00adhyphen"]


def label(name: str) -> str:
    """A name as a hint shows it: quoted, long ones cut, with their length."""
    return repr(name) if len(name) <= 12 else f"{name[:6]!r}… ({len(name)} characters)"


async def problems(h: Harness, name_problem: Any, candidates: list[str]) -> dict[str, Any]:
    return await h.call(lambda: {name: name_problem(name) for name in candidates})


def greeter(name_problem: Any) -> Any:
    """An endpoint that greets a good name and closes a bad one with 1008 and the reason."""

    async def hello(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        problem = name_problem(name)
        if problem is None:
            await websocket.send_text(f"Hello, {name}")
            await websocket.close(1000)
        else:
            await websocket.close(1008, problem)

    return hello


@names.check("letters and digits of any script, '_', '.' and '-', up to 32 characters, pass")
async def _good(h: Harness, name_problem: Any) -> None:
    h.websocket("/hello/{name}", greeter(name_problem))
    server = await h.serve()
    for name in GOOD:
        seen = await attempt(server.ws(f"/hello/{quote(name)}"), timeout=WAIT, close_timeout=0.5)
        if seen.received == [f"Hello, {name}"]:
            continue
        size = f"{len(name)} characters, {len(name.encode())} bytes"
        if seen.close_code == 1008:
            raise CheckFailed(f"{name!r} ({size}) was refused: {seen.close_reason!r}")
        raise CheckFailed(f"{name!r} ({size}): {seen}")


@names.check("empty, too long, spaces, markup and punctuation are refused, with a short reason")
async def _bad(h: Harness, name_problem: Any) -> None:
    got = await problems(h, name_problem, BAD)
    passed = [label(name) for name, problem in got.items() if problem is None]
    expect(not passed, f"these names passed: {', '.join(passed)}")
    for name, problem in got.items():
        shown = repr(problem) if len(repr(problem)) <= 50 else f"{repr(problem)[:48]}…"
        expect(
            isinstance(problem, str) and 0 < len(problem.encode()) <= MAX_REASON_BYTES,
            f"{label(name)} got the reason {shown}: the reason goes in the close frame, so it "
            f"must be text of 1 to {MAX_REASON_BYTES} bytes",
        )


@names.check("invisible and control characters are refused, even at the end")
async def _invisible(h: Harness, name_problem: Any) -> None:
    got = await problems(h, name_problem, INVISIBLE)
    passed = [label(name) for name, problem in got.items() if problem is None]
    expect(not passed, f"these names passed: {', '.join(passed)}")
