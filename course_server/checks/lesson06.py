"""Checks for lesson 06's exercise: authentication by the first message, with a deadline.

The exercise's own cell defines ``SECRET`` and ``AUTH_TIMEOUT``; the check signs its tokens with
the same secret (``SECRET`` below must stay equal to the notebook's) and expects the 4002 close
about ``AUTH_TIMEOUT`` seconds after connecting, but no close for a user who, once welcomed, is
quiet for longer than that. Every close is compared by code and reason; users are drawn
(``cases.seeded``), so a welcome shaped like the prompt's alice does not pass.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

import jwt
from fastapi import Depends, WebSocket, WebSocketException
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.cases import seeded
from course_server.checks.harness import Harness, recording
from course_server.checks.talk import dial, receive
from course_server.clients.websocket import Attempt, attempt
from course_server.lab.waiting import eventually

SECRET = "exercise-secret-not-for-production"
AUTH_TIMEOUT = 1.0

first_message = exercise(
    "06.1",
    "Authenticate by the first message",
    target="first_message_auth",
    references=(
        "course_server.security.secure:first_message",
        "course_server.security.secure:authenticate_first_message",
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


class Calls:
    """The learner's endpoint, counting its calls still running: a close must end its call."""

    def __init__(self, endpoint: Any) -> None:
        self.running = 0

        @functools.wraps(endpoint)  # the same parameters, for FastAPI to inject
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.running += 1
            try:
                return await endpoint(*args, **kwargs)
            finally:
                self.running -= 1

        self.endpoint = call


async def serve(h: Harness, endpoint: Any) -> tuple[str, Calls]:
    calls = Calls(endpoint)
    h.websocket("/auth", calls.endpoint)
    server = await h.serve()
    return server.ws("/auth"), calls


async def closed_after(url: str, *messages: Any, what: str, within: float = 1.5) -> Attempt:
    """Send ``messages`` and read until the server closes, which it must do by itself."""
    try:
        seen = await attempt(url, *messages, timeout=within, close_timeout=0.5)
    except TimeoutError:
        raise CheckFailed(f"{what}: the connection was still open") from None
    expect(seen.accepted, f"the handshake was refused with HTTP {seen.http_status}: accept first")
    return seen


USERS = ("alice", "zoë", "bob-42", "李雷", "o'brien")


def someone(check: str) -> tuple[str, str]:
    """A user and something to say, drawn for the check (not the prompt's alice)."""
    rng = seeded(f"06.1 {check}")
    return f"{rng.choice(USERS)}{rng.randint(1, 99)}", f"hi {rng.randint(100, 999)} ✓"


async def sent(client: ClientConnection, message: str) -> None:
    """Send ``message``; if the server has closed the connection, say how."""
    try:
        await client.send(message)
    except ConnectionClosed:
        code, reason = client.close_code, client.close_reason
        raise CheckFailed(f"the server had closed the connection ({code} {reason!r})") from None


async def welcomed(h: Harness, client: ClientConnection, user: str, said: str) -> None:
    """Authenticate as ``user``; expect the welcome, then ``said`` answered with the name."""
    await sent(client, json.dumps({"type": "auth", "token": token(user)}))
    welcome = await receive(client, user, harness=h)
    expected = {"type": "auth_success", "user_id": user}
    expect(parsed(welcome) == expected, f"a good token for {user} got {welcome!r}, not {expected}")
    await answered(h, client, user, said)


async def answered(h: Harness, client: ClientConnection, user: str, said: str) -> None:
    """Send ``said``; expect it back as ``"USER: said"``."""
    await sent(client, said)
    echoed = await receive(client, user, harness=h)
    wanted = f"{user}: {said}"
    expect(echoed == wanted, f"{said!r} got {echoed!r}, not {wanted!r}")


@first_message.check("a valid token in the first message is welcomed, and the connection stays")
async def _welcome(h: Harness, endpoint: Any) -> None:
    url, _ = await serve(h, endpoint)
    user, said = someone("welcome")
    async with dial(url) as client:
        await welcomed(h, client, user, said)


def closed_with(seen: Attempt, code: int, reason: str) -> bool:
    return (seen.close_code, seen.close_reason, seen.received) == (code, reason, [])


async def stopped(h: Harness, calls: Calls, what: str) -> None:
    """After its close, the endpoint must return: code that goes on raises (or worse, serves)."""
    try:
        await eventually(lambda: calls.running == 0, timeout=1)
    except TimeoutError:
        raise CheckFailed(f"{what} was closed, but your code is still running: return") from None
    expect(not h.errors, f"{what} was closed as it should, but then your code went on: return")


@first_message.check('silence past the deadline closes with 4002 "Authentication timeout"')
async def _silence(h: Harness, endpoint: Any) -> None:
    url, calls = await serve(h, endpoint)
    started = time.monotonic()
    seen = await closed_after(url, what="a client that sent nothing", within=AUTH_TIMEOUT + 2)
    took = time.monotonic() - started
    expected = 'closed 4002 "Authentication timeout"'
    ok = closed_with(seen, 4002, "Authentication timeout")
    expect(ok, f"a client that sent nothing should be {expected}, but was {seen}")
    await stopped(h, calls, "a client that sent nothing")
    expect(took >= AUTH_TIMEOUT * 0.8, f"closed after {took:.1f} s: wait AUTH_TIMEOUT first")


@first_message.check("a first message sent just before the deadline is still in time")
async def _in_time(h: Harness, endpoint: Any) -> None:
    url, _ = await serve(h, endpoint)
    user, said = someone("in time")
    async with dial(url) as client:
        await asyncio.sleep(AUTH_TIMEOUT * 0.6)  # the quiet period is what is checked
        try:
            await welcomed(h, client, user, said)
        except CheckFailed as exc:
            raise CheckFailed(f"{AUTH_TIMEOUT * 0.6:g} s after connecting: {exc}") from None


@first_message.check("the deadline is for the first message only: a quiet user stays in")
async def _quiet(h: Harness, endpoint: Any) -> None:
    url, _ = await serve(h, endpoint)
    user, said = someone("quiet")
    async with dial(url) as client:
        await welcomed(h, client, user, said)
        await asyncio.sleep(AUTH_TIMEOUT * 1.5)  # the quiet period is what is checked
        try:
            await answered(h, client, user, said)
        except CheckFailed as exc:
            quiet = AUTH_TIMEOUT * 1.5
            raise CheckFailed(f"after {quiet:g} s of quiet once welcomed, {exc}") from None


@first_message.check(
    'a first message that is not an auth frame closes with 4001 "Authentication required"'
)
async def _not_auth(h: Harness, endpoint: Any) -> None:
    url, calls = await serve(h, endpoint)
    good = token(someone("not auth")[0])
    firsts = [
        "hello",
        "",
        "[]",
        "null",
        '"auth"',
        '{"type": "message", "content": "hi"}',
        '{"type": "auth"}',
        json.dumps({"token": good}),
        json.dumps({"type": "AUTH", "token": good}),
        json.dumps({"type": "auth", "token": 12345}),
    ]
    for first in firsts:
        seen = await closed_after(url, first, "more", what=f"a first message {first!r}")
        expected = 'closed 4001 "Authentication required", having sent nothing'
        ok = closed_with(seen, 4001, "Authentication required")
        expect(ok, f"a first message {first!r} should be {expected}, but was {seen}")
        await stopped(h, calls, f"a first message {first!r}")


@first_message.check('a binary first frame closes with 4001 "Authentication required"')
async def _binary(h: Harness, endpoint: Any) -> None:
    url, calls = await serve(h, endpoint)
    frame = json.dumps({"type": "auth", "token": token(someone("binary")[0])}).encode()
    seen = await closed_after(url, frame, "more", what="a binary first frame")
    expected = 'closed 4001 "Authentication required", having sent nothing'
    ok = closed_with(seen, 4001, "Authentication required")
    expect(ok, f"an auth frame sent as bytes should be {expected}, but was {seen}")
    await stopped(h, calls, "a binary first frame")


@first_message.check("a client that leaves before a word ends the call quietly")
async def _left(h: Harness, endpoint: Any) -> None:
    url, calls = await serve(h, endpoint)
    async with dial(url):
        pass  # connect, then leave at once: a closed tab

    try:
        await eventually(lambda: calls.running == 0, timeout=AUTH_TIMEOUT / 2)
    except TimeoutError:
        raise CheckFailed(
            "a client left before sending anything, and your code still waits for it: return "
            'on a message of type "websocket.disconnect"'
        ) from None
    expect(not h.errors, "a client left before sending anything, and your code raised")


def unsigned(user: str) -> str:
    """A token with no signature at all (``alg: none``): anyone can write one."""
    return jwt.encode({"sub": user, "exp": int(time.time()) + 60}, None, algorithm="none")


@first_message.check('a bad or expired token closes with 4003 "Invalid token"')
async def _bad_token(h: Harness, endpoint: Any) -> None:
    url, calls = await serve(h, endpoint)
    user = someone("bad token")[0]
    bad = {
        "a token signed with another secret": token(
            user, secret="another-secret-long-enough-for-hs256"
        ),
        "an expired token": token(user, lifetime=-10),
        "a token that is no JWT": "let-me-in",
        "an unsigned token (alg none)": unsigned(user),
        "a token that never expires (no exp)": jwt.encode({"sub": user}, SECRET, "HS256"),
        "a token that names no user (no sub)": jwt.encode(
            {"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
        ),
    }
    for what, value in bad.items():
        seen = await closed_after(url, {"type": "auth", "token": value}, "more", what=what)
        expected = 'closed 4003 "Invalid token", having sent nothing'
        ok = closed_with(seen, 4003, "Invalid token")
        expect(ok, f"{what} should be {expected}, but was {seen}")
        await stopped(h, calls, what)


# --- 06.2 a token in the handshake, checked by a dependency ---------------------------------

AUDIENCE = "course-chat"

handshake = exercise("06.2", "Check the token before accept, in a dependency", target="token_user")


def claims_token(claims: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret if algorithm != "none" else None, algorithm=algorithm)


def good_claims(user: str, *, lifetime: int = 60, audience: str = AUDIENCE) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": user, "aud": audience, "iat": now, "exp": now + lifetime}


def recorded(h: Harness, token_user: Any) -> Any:
    """``token_user``, with what it raises recorded, a ``WebSocketException`` (a refusal) aside."""

    def record(exc: Exception) -> None:
        if not isinstance(exc, WebSocketException):
            h.errors.append(exc)

    return recording(token_user, record)


def chat_with(token_user: Any) -> Any:
    """An endpoint that takes its user from ``Depends(token_user)``, greets, then echoes."""

    async def chat(websocket: WebSocket, user: str = Depends(token_user)) -> None:
        await websocket.accept()
        await websocket.send_json({"type": "auth_success", "user_id": user})
        while True:
            await websocket.send_text(f"{user}: {await websocket.receive_text()}")

    return chat


async def serve_handshake(h: Harness, token_user: Any) -> str:
    h.websocket("/chat", chat_with(recorded(h, token_user)))
    server = await h.serve()
    return server.ws("/chat")


async def greeted(h: Harness, url: str, user: str, what: str) -> None:
    """Connect to ``url`` and fail unless the server greets ``user`` and echoes in their name."""
    try:
        async with dial(url) as client:
            greeting = parsed(await receive(client, what, harness=h))
            expect(
                greeting == {"type": "auth_success", "user_id": user},
                f"{what} should be greeted as {user!r}, but got {greeting!r}",
            )
            await client.send("hello")
            echo = await receive(client, what, harness=h)
            expect(echo == f"{user}: hello", f"{what} said hello; the echo was {echo!r}")
    except InvalidStatus as exc:
        raise CheckFailed(f"{what} was refused: HTTP {exc.response.status_code}") from None


@handshake.check("a valid token in ?token= is let in as the token's user")
async def _valid(h: Harness, token_user: Any) -> None:
    url = await serve_handshake(h, token_user)
    user, _ = someone("06.2 valid")
    await greeted(
        h, f"{url}?token={claims_token(good_claims(user))}", user, f"a token for {user!r}"
    )


@handshake.check("the user comes from the token, not from a ?user= the client adds")
async def _identity(h: Harness, token_user: Any) -> None:
    url = await serve_handshake(h, token_user)
    user, _ = someone("06.2 identity")
    query = f"token={claims_token(good_claims(user))}&user=mallory&username=mallory"
    await greeted(h, f"{url}?{query}", user, f"a token for {user!r} with ?user=mallory")


def rejections(user: str) -> dict[str, str]:
    """Tokens that must not get in, by what is wrong with them."""
    return {
        "no token at all": "",
        "an expired token": claims_token(good_claims(user, lifetime=-30)),
        "a token signed with another secret": claims_token(good_claims(user), secret="guess" * 8),
        "a token for another audience": claims_token(good_claims(user, audience="billing")),
        "an unsigned token (alg none)": claims_token(good_claims(user), algorithm="none"),
        "a token without an expiry": claims_token(
            {k: v for k, v in good_claims(user).items() if k != "exp"}
        ),
        "text that is no token": "not.a.token",
        "a token that names no user (no sub)": claims_token(
            {k: v for k, v in good_claims(user).items() if k != "sub"}
        ),
    }


@handshake.check(
    "a missing, expired, forged, unsigned or wrong-audience token is refused before accept"
)
async def _refused(h: Harness, token_user: Any) -> None:
    url = await serve_handshake(h, token_user)
    user, _ = someone("06.2 refused")
    for what, value in rejections(user).items():
        target = f"{url}?token={value}" if value else url
        try:
            seen = await attempt(target, timeout=0.5)
        except TimeoutError:
            raise CheckFailed(
                f"{what} was let in: the handshake succeeded and the connection stayed open"
            ) from None
        expect(
            not seen.accepted and seen.http_status == 403,
            f"{what} should be refused in the handshake (HTTP 403, from WebSocketException(1008) "
            f"raised before accept), but was {seen}",
        )
