"""Lesson 06's dependency-checked WebSockets (``course_server.security.dependencies``).

What a real client sees when ``Depends(...)`` refuses with ``WebSocketException``: a bare HTTP
403 before ``accept()``, a close code and reason after it; and that a good token, by query or
cookie, gets the same conversation as lesson 06's other endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import wait_timeout

from course_server import RunningServer, Settings, start
from course_server.clients.websocket import Attempt, attempt
from course_server.security.tokens import SESSION_COOKIE, create_access_token

pytestmark = pytest.mark.anyio

SECRET = "lesson-06-dependencies-" * 3  # over the 32 bytes RFC 7518 asks of an HS256 key
AUTH_SUCCESS = {"type": "auth_success", "user_id": "alice"}
BEFORE = "/secure/ws/depends"
AFTER = "/secure/ws/depends/accepted"
ENDS = {"type": "refresh", "token": "x"}  # a bad refresh: the server closes, the attempt ends


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One server for the module: these endpoints keep no state between connections."""
    with start(name=f"test-{__name__}", settings=Settings(jwt_secret=SECRET)) as running:
        yield running


def token(sub: str = "alice", lifetime: int = 60) -> str:
    return create_access_token(sub, SECRET, lifetime)


async def see(server: RunningServer, path: str, *messages: Any, **options: Any) -> Attempt:
    return await attempt(server.ws(path), *messages, timeout=wait_timeout(), **options)


def first_frame(seen: Attempt) -> Any:
    return json.loads(seen.received[0])


async def test_before_accept_a_query_token_is_accepted(server: RunningServer) -> None:
    seen = await see(server, f"{BEFORE}?token={token()}", ENDS)
    assert first_frame(seen) == AUTH_SUCCESS


async def test_before_accept_a_session_cookie_is_accepted(server: RunningServer) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={token()}"}
    seen = await see(server, BEFORE, ENDS, additional_headers=cookie)
    assert first_frame(seen) == AUTH_SUCCESS


async def test_before_accept_no_token_is_a_bare_403(server: RunningServer) -> None:
    seen = await see(server, BEFORE)
    assert (seen.accepted, seen.http_status, seen.body) == (False, 403, "")


async def test_before_accept_a_bad_token_is_a_bare_403(server: RunningServer) -> None:
    seen = await see(server, f"{BEFORE}?token=not-a-jwt")
    assert (seen.accepted, seen.http_status, seen.body) == (False, 403, "")


async def test_before_accept_an_expired_token_is_a_bare_403(server: RunningServer) -> None:
    seen = await see(server, f"{BEFORE}?token={token(lifetime=-60)}")
    assert (seen.accepted, seen.http_status) == (False, 403)


async def test_after_accept_a_query_token_is_accepted(server: RunningServer) -> None:
    seen = await see(server, f"{AFTER}?token={token()}", ENDS)
    assert first_frame(seen) == AUTH_SUCCESS


async def test_after_accept_no_token_closes_4001_with_its_reason(server: RunningServer) -> None:
    seen = await see(server, AFTER)
    assert (seen.accepted, seen.close_code, seen.close_reason) == (True, 4001, "Token required")


async def test_after_accept_a_bad_token_closes_4003_with_its_reason(server: RunningServer) -> None:
    seen = await see(server, f"{AFTER}?token=not-a-jwt")
    assert (seen.close_code, seen.close_reason) == (4003, "Invalid token")


async def test_after_accept_an_expired_token_says_so(server: RunningServer) -> None:
    seen = await see(server, f"{AFTER}?token={token(lifetime=-60)}")
    assert (seen.close_code, seen.close_reason) == (4003, "Token expired")


async def test_the_query_token_wins_over_the_cookie(server: RunningServer) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={token('bob')}"}
    seen = await see(server, f"{AFTER}?token={token()}", ENDS, additional_headers=cookie)
    assert first_frame(seen) == AUTH_SUCCESS
