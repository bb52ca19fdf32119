"""Checks for lesson 06's exercise: authentication by the first message, with a deadline.

The exercise's own cell defines ``SECRET`` and ``AUTH_TIMEOUT``; the check signs its tokens with
the same secret (``SECRET`` below must stay equal to the notebook's) and expects the 4002 close
about ``AUTH_TIMEOUT`` seconds after connecting.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.checks.talk import dial, receive
from course_server.clients import Attempt, attempt

SECRET = "exercise-secret-not-for-production"
AUTH_TIMEOUT = 1.0

first_message = exercise(
    "06.1",
    "Authenticate by the first message",
    target="first_message_auth",
    references=(
        "course_server.secure:first_message",
        "course_server.secure:authenticate_first_message",
    ),
)


def token(user: str, *, lifetime: float = 60, secret: str = SECRET) -> str:
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + int(lifetime)}
    return jwt.encode(claims, secret, algorithm="HS256")


def parsed(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


async def serve(h: Harness, endpoint: Any) -> str:
    h.websocket("/auth", endpoint)
    server = await h.serve()
    return server.ws("/auth")


async def closed_after(url: str, *messages: Any, what: str, within: float = 1.5) -> Attempt:
    """Send ``messages`` and read until the server closes, which it must do by itself."""
    try:
        seen = await attempt(url, *messages, timeout=within, close_timeout=0.5)
    except TimeoutError:
        raise CheckFailed(f"{what}: the connection was still open") from None
    expect(seen.accepted, f"the handshake was refused with HTTP {seen.http_status}: accept first")
    return seen


@first_message.check("a valid token in the first message is welcomed, and the connection stays")
async def _welcome(h: Harness, endpoint: Any) -> None:
    url = await serve(h, endpoint)
    async with dial(url) as client:
        await client.send(json.dumps({"type": "auth", "token": token("alice")}))
        welcome = await receive(client, "alice", harness=h)
        expected = {"type": "auth_success", "user_id": "alice"}
        expect(parsed(welcome) == expected, f"a good token got {welcome!r}, not {expected}")
        await client.send("hi")
        echoed = await receive(client, "alice", harness=h)
        expect(echoed == "alice: hi", f"after the welcome, 'hi' got {echoed!r}")


@first_message.check("silence past the deadline closes with 4002")
async def _silence(h: Harness, endpoint: Any) -> None:
    url = await serve(h, endpoint)
    started = time.monotonic()
    seen = await closed_after(url, what="a client that sent nothing", within=AUTH_TIMEOUT + 2)
    took = time.monotonic() - started
    expect(seen.close_code == 4002, f"a client that sent nothing: {seen}")
    expect(took >= AUTH_TIMEOUT * 0.8, f"closed after {took:.1f} s: wait AUTH_TIMEOUT first")


@first_message.check("a first message that is not an auth frame closes with 4001")
async def _not_auth(h: Harness, endpoint: Any) -> None:
    url = await serve(h, endpoint)
    for first in ("hello", '{"type": "message", "content": "hi"}', '{"type": "auth"}'):
        seen = await closed_after(url, first, "more", what=f"a first message {first!r}")
        expect((seen.close_code, seen.received) == (4001, []), f"a first message {first!r}: {seen}")


@first_message.check("a bad or expired token closes with 4003")
async def _bad_token(h: Harness, endpoint: Any) -> None:
    url = await serve(h, endpoint)
    bad = {
        "a token signed with another secret": token(
            "alice", secret="another-secret-long-enough-for-hs256"
        ),
        "an expired token": token("alice", lifetime=-10),
        "a token that is no JWT": "let-me-in",
    }
    for what, value in bad.items():
        seen = await closed_after(url, {"type": "auth", "token": value}, "more", what=what)
        expect((seen.close_code, seen.received) == (4003, []), f"{what}: {seen}")
