"""Sign-out revokes: after ``DELETE /session`` the cookie's token is refused everywhere.

Spec, Security contract: the token is refused by every endpoint (``/secure/ws*``, the chat's
name proof, ``GET /session``, ``POST /notifications``), on every process when Redis is
configured, until it would have expired anyway. The attacker here kept a copy of the cookie
before its owner signed out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from conftest import wait_timeout
from credentials import CHEAP

from course_server import RunningServer, Settings, create_app, start
from course_server.clients.websocket import attempt
from course_server.scaling.revocation import REVOKED, UNCHECKED
from course_server.security.revocation import InProcessRevocations
from course_server.security.tokens import SESSION_COOKIE, Users, decode_token
from course_server.tools.processes import spawn_many
from course_server.tools.redis_server import RedisServer
from course_server.urls import ServerURLs

pytestmark = pytest.mark.anyio

SECRET = "revocation-tests-secret-" * 2
LIFETIME = 300


def cheap_server(name: str, **settings: str) -> RunningServer:
    app = create_app(Settings(jwt_secret=SECRET, token_lifetime=LIFETIME, **settings))
    app.state.users = Users(app.state.settings.demo_users, hasher=CHEAP)
    return start(app, name=name)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with cheap_server(f"test-{__name__}") as running:
        yield running


async def sign_in(server: ServerURLs, user: str = "alice", password: str = "wonderland") -> str:
    """Sign in with ``POST /session``; the token its cookie carries (the attacker's copy)."""
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        form = {"username": user, "password": password}
        response = await http.post(server.url("/session"), data=form)
        assert response.status_code == 200, response.text
        return http.cookies[SESSION_COOKIE]


def with_cookie(token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=wait_timeout(10), cookies={SESSION_COOKIE: token})


async def sign_out(server: ServerURLs, token: str) -> None:
    async with with_cookie(token) as http:
        response = await http.delete(server.url("/session"))
    assert response.status_code == 204


async def session_of(server: ServerURLs, token: str) -> httpx.Response:
    async with with_cookie(token) as http:
        return await http.get(server.url("/session"))


async def publish_with(server: ServerURLs, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        headers = {"Authorization": f"Bearer {token}"}
        return await http.post(server.url("/notifications"), json={"title": "t"}, headers=headers)


@pytest.fixture
async def revoked(server: RunningServer) -> str:
    """A token that worked, then was signed out."""
    token = await sign_in(server)
    assert (await session_of(server, token)).status_code == 200
    await sign_out(server, token)
    return token


REVOKED_REASON = {"detail": "Token revoked"}


async def test_session_refuses_a_signed_out_cookie(server: RunningServer, revoked: str) -> None:
    response = await session_of(server, revoked)
    assert response.status_code == 401
    assert response.json() == REVOKED_REASON


async def test_query_token_websocket_refuses_it(server: RunningServer, revoked: str) -> None:
    seen = await attempt(server.ws(f"/secure/ws?token={revoked}"), timeout=wait_timeout())
    assert (seen.accepted, seen.http_status) == (False, 401)
    assert json.loads(seen.body) == REVOKED_REASON


async def test_cookie_websocket_refuses_it(server: RunningServer, revoked: str) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}={revoked}"}
    seen = await attempt(
        server.ws("/secure/ws/cookie"), additional_headers=cookie, timeout=wait_timeout()
    )
    assert (seen.accepted, seen.http_status) == (False, 401)
    assert json.loads(seen.body) == REVOKED_REASON


async def test_first_message_websocket_closes_4003(server: RunningServer, revoked: str) -> None:
    auth = json.dumps({"type": "auth", "token": revoked})
    seen = await attempt(server.ws("/secure/ws/v2"), auth, timeout=wait_timeout())
    assert (seen.close_code, seen.close_reason) == (4003, "Token revoked")


async def test_refreshing_with_it_closes_4003(server: RunningServer, revoked: str) -> None:
    fresh = await sign_in(server)
    refresh = json.dumps({"type": "refresh", "token": revoked})
    seen = await attempt(server.ws(f"/secure/ws?token={fresh}"), refresh, timeout=wait_timeout())
    assert (seen.close_code, seen.close_reason) == (4003, "Token revoked")


async def test_the_chat_refuses_it_as_proof_of_a_name(server: RunningServer, revoked: str) -> None:
    seen = await attempt(
        server.ws(f"/chat/revoked-room/alice?token={revoked}"), timeout=wait_timeout()
    )
    assert (seen.close_code, seen.close_reason) == (4003, "Token revoked")


async def test_publishing_refuses_it(server: RunningServer, revoked: str) -> None:
    response = await publish_with(server, revoked)
    assert response.status_code == 401
    assert response.json() == REVOKED_REASON
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_the_users_other_tokens_still_work(server: RunningServer, revoked: str) -> None:
    other = await sign_in(server)
    assert (await session_of(server, other)).json() == {"user_id": "alice"}


async def test_signing_out_a_forged_cookie_records_nothing(server: RunningServer) -> None:
    before = len(server.app.state.revocations)
    await sign_out(server, "not-a-jwt")
    assert len(server.app.state.revocations) == before


async def test_the_deny_list_forgets_tokens_once_they_have_expired() -> None:
    revocations = InProcessRevocations()
    await revocations.revoke("old", time.time() - 1)
    await revocations.revoke("live", time.time() + 60)
    assert (await revocations.revoked("old"), await revocations.revoked("live")) == (False, True)
    assert len(revocations) == 1


# Publishing needs a token (Security contract): none, or a bad one → 401


async def test_publishing_without_a_token_is_401_with_a_bearer_challenge(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.post(server.url("/notifications"), json={"title": "spam"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Not authenticated"}


async def test_publishing_with_a_forged_token_is_401(server: RunningServer) -> None:
    response = await publish_with(server, "not-a-jwt")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token"}


async def test_publishing_with_a_good_token_is_201(server: RunningServer) -> None:
    response = await publish_with(server, await sign_in(server))
    assert response.status_code == 201


# Across processes, through Redis


@pytest.fixture(scope="module")
def pair(redis_server: RedisServer) -> Iterator[tuple[RunningServer, RunningServer]]:
    a = cheap_server(f"test-{__name__}-a", redis_url=redis_server.url)
    b = cheap_server(f"test-{__name__}-b", redis_url=redis_server.url)
    yield a, b
    a.stop()
    b.stop()


async def test_signed_out_on_one_process_refused_on_the_other(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    token = await sign_in(a)
    assert (await session_of(b, token)).status_code == 200
    await sign_out(a, token)
    assert (await session_of(b, token)).json() == REVOKED_REASON
    assert (await publish_with(b, token)).status_code == 401
    seen = await attempt(b.ws(f"/secure/ws?token={token}"), timeout=wait_timeout())
    assert seen.http_status == 401


async def test_redis_keeps_the_id_only_until_the_token_expires(
    pair: tuple[RunningServer, RunningServer], redis_url: str
) -> None:
    a, _ = pair
    token = await sign_in(a)
    await sign_out(a, token)
    claims = decode_token(token, SECRET)
    with redis.Redis.from_url(redis_url) as client:
        remaining_ms = client.pttl(REVOKED + claims["jti"])
    assert 0 < remaining_ms <= LIFETIME * 1000
    assert remaining_ms / 1000 <= claims["exp"] - time.time() + 1


async def test_signed_out_on_one_server_process_refused_by_another(redis_url: str) -> None:
    """``python -m course_server`` twice, with real argon2: all they share is Redis."""
    a, b = spawn_many(2, redis_url=redis_url)
    with a, b:
        token = await sign_in(a)
        assert (await session_of(b, token)).status_code == 200
        await sign_out(b, token)
        response = await session_of(a, token)
    assert response.json() == REVOKED_REASON


async def test_while_redis_is_down_tokens_are_refused_with_503(
    pair: tuple[RunningServer, RunningServer], redis_server: RedisServer
) -> None:
    """Fails closed: any token might have been signed out, and only Redis knows."""
    a, _ = pair
    token = await sign_in(a)
    await asyncio.to_thread(redis_server.stop)
    try:
        session = await session_of(a, token)
        seen = await attempt(a.ws(f"/secure/ws?token={token}"), timeout=wait_timeout())
    finally:
        await asyncio.to_thread(redis_server.start)
    assert (session.status_code, session.headers["retry-after"]) == (503, "1")
    assert seen.http_status == 401
    assert json.loads(seen.body) == {"detail": UNCHECKED}
    assert (await session_of(a, token)).status_code == 200
