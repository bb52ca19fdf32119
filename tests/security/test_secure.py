"""Lesson 06's authenticated WebSockets (``course_server.security.secure``), from a real client.

Every way in and every way of being refused, as the client sees it: a refused handshake (HTTP
status and body) for the query-string and cookie endpoints, a close code for the first-message
one, and a close code when a token runs out on an open connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from conftest import wait_timeout
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from course_server import RunningServer, Settings, start
from course_server.clients.websocket import Attempt, attempt
from course_server.security.tokens import SESSION_COOKIE, create_access_token

pytestmark = pytest.mark.anyio

SECRET = "lesson-06-tests-" * 4  # 64 bytes, enough for HS512 too (see test_tokens.py)
AUTH_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One server for this module (overrides conftest's per-test one, to save start-ups).

    Safe because these endpoints keep no state between connections. Its own secret: conftest's
    is 30 bytes, under the 32 that RFC 7518 asks of HS256 keys, and PyJWT warns about it.
    """
    settings = Settings(jwt_secret=SECRET, auth_timeout=AUTH_TIMEOUT)
    with start(name=f"test-{__name__}", settings=settings) as running:
        yield running


def token(sub: str = "alice", lifetime: int = 60) -> str:
    return create_access_token(sub, SECRET, lifetime)


def forge(secret: str | None = SECRET, algorithm: str = "HS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 60, "jti": f"id-{now}", **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm)


def expiring_soon() -> tuple[str, float]:
    """A token valid for one to two more seconds (JWT times are whole seconds), and its exp."""
    exp = math.floor(time.time()) + 2
    return forge(exp=exp), exp


# Minted when a test runs, not at import: a token made at collection could expire before its
# test runs in a long session. Each: how to make it, and the reason the server gives.
BAD_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "malformed": (lambda: "not-a-jwt", "Invalid token"),
    "bad-signature": (lambda: forge(secret="another-key-" * 6), "Invalid token"),
    "expired": (lambda: forge(exp=int(time.time()) - 60), "Token expired"),
    "alg-none": (lambda: forge(secret=None, algorithm="none"), "Invalid token"),
    "wrong-algorithm": (lambda: forge(algorithm="HS512"), "Invalid token"),
    "no-sub": (lambda: forge(sub=None), "Invalid token"),
}


def bad_token(case: str) -> tuple[str, str]:
    make, reason = BAD_TOKENS[case]
    return make(), reason


AUTH_SUCCESS = {"type": "auth_success", "user_id": "alice"}


def frames(seen: Attempt) -> list[Any]:
    return [json.loads(frame) for frame in seen.received]


async def see(server: RunningServer, path: str, *messages: Any, **options: Any) -> Attempt:
    return await attempt(server.ws(path), *messages, timeout=wait_timeout(), **options)


# WS /secure/ws?token=T: checked before accept, refused with HTTP 401


async def test_query_token_is_accepted_and_named(server: RunningServer) -> None:
    async with connect(server.ws(f"/secure/ws?token={token()}")) as websocket:
        async with asyncio.timeout(wait_timeout()):
            assert json.loads(await websocket.recv()) == AUTH_SUCCESS
            await websocket.send("hello")
            assert json.loads(await websocket.recv()) == {
                "type": "echo",
                "user_id": "alice",
                "message": "hello",
            }


@pytest.mark.parametrize("query", ["", "?token="])
async def test_query_without_token_is_refused_with_401(server: RunningServer, query: str) -> None:
    seen = await see(server, f"/secure/ws{query}")
    assert (seen.accepted, seen.http_status) == (False, 401)
    assert json.loads(seen.body) == {"detail": "Token required"}


async def test_query_refusal_says_how_to_authenticate(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(wait_timeout()), connect(server.ws("/secure/ws")):
            pass
    assert refused.value.response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_query_bad_token_is_refused_with_401(server: RunningServer, case: str) -> None:
    bad, reason = bad_token(case)
    seen = await see(server, f"/secure/ws?token={bad}")
    assert (seen.accepted, seen.http_status) == (False, 401)
    assert json.loads(seen.body) == {"detail": reason}


# WS /secure/ws/v2: accepted, then the first message must authenticate


async def test_first_message_auth_then_echo(server: RunningServer) -> None:
    async with connect(server.ws("/secure/ws/v2")) as websocket:
        async with asyncio.timeout(wait_timeout()):
            await websocket.send(json.dumps({"type": "auth", "token": token("bob")}))
            assert json.loads(await websocket.recv())["user_id"] == "bob"
            await websocket.send(b"\x00\x01")
            assert json.loads(await websocket.recv())["message"] == "<2 bytes>"


async def test_silence_closes_with_4002_after_the_auth_timeout(server: RunningServer) -> None:
    started = time.monotonic()
    seen = await see(server, "/secure/ws/v2")
    assert (seen.close_code, seen.close_reason) == (4002, "Auth timeout")
    assert time.monotonic() - started >= AUTH_TIMEOUT


@pytest.mark.parametrize(
    "first",
    [
        pytest.param("hello", id="not-json"),
        pytest.param({"type": "message", "content": "hi"}, id="other-type"),
        pytest.param({"type": "auth"}, id="no-token"),
        pytest.param({"type": "auth", "token": 42}, id="token-not-a-string"),
        pytest.param(b"\x00", id="binary"),
    ],
)
async def test_other_first_message_closes_with_4001(server: RunningServer, first: Any) -> None:
    seen = await see(server, "/secure/ws/v2", first)
    assert (seen.accepted, seen.received) == (True, [])
    assert (seen.close_code, seen.close_reason) == (4001, "First message must be auth")


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_first_message_bad_token_closes_with_4003(server: RunningServer, case: str) -> None:
    bad, reason = bad_token(case)
    seen = await see(server, "/secure/ws/v2", {"type": "auth", "token": bad})
    assert (seen.received, seen.close_code, seen.close_reason) == ([], 4003, reason)


# WS /secure/ws/cookie: the session cookie, and the Origin guard in front of it


async def test_cookie_is_accepted(server: RunningServer) -> None:
    seen = await see(
        server,
        "/secure/ws/cookie",
        {"type": "refresh", "token": "x"},  # ends the conversation
        additional_headers={"Cookie": f"{SESSION_COOKIE}={token()}"},
    )
    assert frames(seen)[0] == AUTH_SUCCESS


async def test_no_cookie_is_refused_with_401(server: RunningServer) -> None:
    seen = await see(server, "/secure/ws/cookie")
    assert (seen.http_status, json.loads(seen.body)) == (401, {"detail": "Token required"})


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_bad_cookie_is_refused_with_401(server: RunningServer, case: str) -> None:
    bad, reason = bad_token(case)
    seen = await see(server, "/secure/ws/cookie", additional_headers={"Cookie": f"session={bad}"})
    assert (seen.http_status, json.loads(seen.body)) == (401, {"detail": reason})


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://127.0.0.1:1", "null", "https://127.0.0.1"]
)
async def test_cookie_from_a_foreign_origin_is_refused_with_403(
    server: RunningServer, origin: str
) -> None:
    """Cross-site WebSocket hijacking: the victim's cookie, sent by someone else's page."""
    headers = {"Cookie": f"{SESSION_COOKIE}={token()}", "Origin": origin}
    seen = await see(server, "/secure/ws/cookie", additional_headers=headers)
    assert (seen.accepted, seen.http_status) == (False, 403)
    assert seen.body == f"Origin {origin!r} is not allowed"


async def test_cookie_from_the_servers_own_origin_is_accepted(server: RunningServer) -> None:
    headers = {"Cookie": f"{SESSION_COOKIE}={token()}", "Origin": server.http_url}
    seen = await see(
        server, "/secure/ws/cookie", {"type": "refresh", "token": "x"}, additional_headers=headers
    )
    assert frames(seen)[0] == AUTH_SUCCESS


# A token that expires on an open connection


async def test_expiry_while_connected_closes_with_4003(server: RunningServer) -> None:
    short, exp = expiring_soon()
    seen = await see(server, "/secure/ws/v2", {"type": "auth", "token": short})
    assert frames(seen) == [AUTH_SUCCESS]
    assert (seen.close_code, seen.close_reason) == (4003, "Token expired")
    assert time.time() >= exp


async def test_refresh_in_time_keeps_the_connection(server: RunningServer) -> None:
    short, exp = expiring_soon()
    async with connect(server.ws(f"/secure/ws?token={short}")) as websocket:
        async with asyncio.timeout(wait_timeout()):
            assert json.loads(await websocket.recv()) == AUTH_SUCCESS
            await websocket.send(json.dumps({"type": "refresh", "token": token()}))
            assert json.loads(await websocket.recv()) == {"type": "refresh_success"}
        # Nothing may arrive (no close either) until well past the first token's expiry.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(exp - time.time() + 0.3):
                await websocket.recv()
        async with asyncio.timeout(wait_timeout()):
            await websocket.send("still here")
            assert json.loads(await websocket.recv())["message"] == "still here"


@pytest.mark.parametrize("case", ["other-user", *BAD_TOKENS])
async def test_bad_refresh_closes_with_4003(server: RunningServer, case: str) -> None:
    if case == "other-user":
        fresh, reason = token("bob"), "Token is for another user"
    else:
        fresh, reason = bad_token(case)
    seen = await see(server, f"/secure/ws?token={token()}", {"type": "refresh", "token": fresh})
    assert frames(seen) == [AUTH_SUCCESS]
    assert (seen.close_code, seen.close_reason) == (4003, reason)


# The chat (lesson 04) with a token: it must name the user in the path


async def first_chat_frame(url: str, **options: Any) -> dict[str, Any]:
    async with asyncio.timeout(wait_timeout()), connect(url, **options) as websocket:
        return json.loads(await websocket.recv())


async def test_chat_with_a_matching_token_joins(server: RunningServer) -> None:
    frame = await first_chat_frame(server.ws(f"/chat/auth-1/alice?token={token()}"))
    assert (frame["type"], frame["username"]) == ("join", "alice")


async def test_chat_with_a_matching_cookie_joins(server: RunningServer) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={token('bob')}"}
    frame = await first_chat_frame(server.ws("/chat/auth-2/bob"), additional_headers=cookie)
    assert (frame["type"], frame["username"]) == ("join", "bob")


async def test_chat_without_a_token_still_joins(server: RunningServer) -> None:
    frame = await first_chat_frame(server.ws("/chat/auth-3/carol"))
    assert (frame["type"], frame["username"]) == ("join", "carol")


async def test_chat_as_someone_else_closes_with_4003(server: RunningServer) -> None:
    seen = await see(server, f"/chat/auth-4/bob?token={token('alice')}")
    assert (seen.accepted, seen.received) == (True, [])
    assert (seen.close_code, seen.close_reason) == (4003, "Token does not match username")


async def test_chat_with_someone_elses_cookie_closes_with_4003(server: RunningServer) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={token('alice')}"}
    seen = await see(server, "/chat/auth-5/bob", additional_headers=cookie)
    assert (seen.close_code, seen.close_reason) == (4003, "Token does not match username")


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_chat_with_a_bad_token_closes_with_4003(server: RunningServer, case: str) -> None:
    bad, reason = bad_token(case)
    seen = await see(server, f"/chat/auth-6/alice?token={bad}")
    assert (seen.received, seen.close_code, seen.close_reason) == ([], 4003, reason)
