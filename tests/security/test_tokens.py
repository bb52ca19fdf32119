"""Lesson 06's tokens (``course_server.security.tokens``): signing, checking, and logging in.

Logging in is slow on purpose: the app hashes with argon2 at pwdlib's recommended cost, a
quarter of a second or more per hash or check. One test checks that the app uses it; the others
use argon2 at its lowest cost (``credentials.CHEAP``), which behaves the same and takes
microseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from conftest import wait_timeout
from credentials import CHEAP

from course_server import RunningServer, Settings, create_app, start
from course_server.clients.websocket import attempt
from course_server.security.tokens import (
    SESSION_COOKIE,
    TokenError,
    Users,
    create_access_token,
    decode_token,
    password_hash,
)

pytestmark = pytest.mark.anyio

# 64 bytes: RFC 7518 wants HS256 keys of at least 32 bytes and HS512 ones of 64 (PyJWT warns
# below that, and warnings are errors here); the wrong-algorithm test signs with HS512.
SECRET = "lesson-06-tests-" * 4


def forge(secret: str | None = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A token with exactly ``claims`` (nothing added), signed as asked."""
    return jwt.encode(claims, secret, algorithm=algorithm)


def valid_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 60, "jti": "id-1", **changes}


# Signing and checking


def test_token_carries_sub_iat_exp_and_jti() -> None:
    token = create_access_token("alice", SECRET, 900, now=1_000_000)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {"sub": "alice", "iat": 1_000_000, "exp": 1_000_900, "jti": claims["jti"]}


def test_each_token_has_an_id_of_its_own() -> None:
    ids = {decode_token(create_access_token("alice", SECRET, 60), SECRET)["jti"] for _ in "ab"}
    assert len(ids) == 2


def test_decode_returns_the_claims_of_a_good_token() -> None:
    assert decode_token(create_access_token("bob", SECRET, 60), SECRET)["sub"] == "bob"


def test_expired_token_is_reported_as_expired() -> None:
    token = create_access_token("alice", SECRET, 60, now=time.time() - 120)
    with pytest.raises(TokenError, match="Token expired"):
        decode_token(token, SECRET)


# Minted when the test runs: one made at collection could expire before a long session gets here.
REFUSED: dict[str, Callable[[], str]] = {
    "malformed": lambda: "not-a-jwt",
    "empty": lambda: "",
    "bad-signature": lambda: forge(secret="another-key-" * 6, **valid_claims()),
    "alg-none": lambda: forge(secret=None, algorithm="none", **valid_claims()),
    "wrong-algorithm": lambda: forge(algorithm="HS512", **valid_claims()),
    "no-sub": lambda: forge(iat=0, exp=time.time() + 60, jti="id-1"),
    "empty-sub": lambda: forge(**valid_claims(sub="")),
    "sub-not-a-string": lambda: forge(**valid_claims(sub=42)),
    "no-exp": lambda: forge(sub="alice", iat=int(time.time()), jti="id-1"),
    "no-iat": lambda: forge(sub="alice", exp=int(time.time()) + 60, jti="id-1"),
    "no-jti": lambda: forge(sub="alice", iat=int(time.time()), exp=int(time.time()) + 60),
    "empty-jti": lambda: forge(**valid_claims(jti="")),
}


@pytest.mark.parametrize("case", REFUSED)
def test_decode_refuses(case: str) -> None:
    token = REFUSED[case]()
    with pytest.raises(TokenError, match="Invalid token"):
        decode_token(token, SECRET)


def test_forged_expired_token_is_invalid_not_expired() -> None:
    """The signature is checked first: a forger learns nothing from the expiry."""
    token = forge(secret="another-key-" * 6, **valid_claims(exp=int(time.time()) - 60))
    with pytest.raises(TokenError, match="Invalid token"):
        decode_token(token, SECRET)


# Users: argon2 hashes, computed once


def test_the_app_hashes_at_the_recommended_cost() -> None:
    assert create_app(Settings()).state.users.hasher is password_hash
    assert password_hash.hash("x").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


@pytest.fixture
def users() -> Users:
    return Users({"alice": "wonderland"}, hasher=CHEAP)


def test_right_password_authenticates(users: Users) -> None:
    assert users.authenticate("alice", "wonderland")


def test_wrong_password_does_not(users: Users) -> None:
    assert not users.authenticate("alice", "alice")


def test_unknown_user_does_not_even_with_a_users_password(users: Users) -> None:
    assert not users.authenticate("mallory", "wonderland")


def test_no_users_no_login() -> None:
    assert not Users({}, hasher=CHEAP).authenticate("alice", "wonderland")


def test_only_argon2_hashes_are_kept(users: Users) -> None:
    users.authenticate("alice", "wonderland")
    hashes = users._hashed()
    assert hashes["alice"].startswith("$argon2id$")
    assert "wonderland" not in repr(vars(users))


def test_hashes_are_computed_once(users: Users) -> None:
    assert users._hashed() is users._hashed()


def test_nothing_is_hashed_before_the_first_login(users: Users) -> None:
    assert users._hashes is None


# POST /token and POST /session, on a real server


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One server for the login tests (no state between them), with cheaply hashed users."""
    settings = Settings(jwt_secret=SECRET, token_lifetime=120)
    app = create_app(settings)
    app.state.users = Users(settings.demo_users, hasher=CHEAP)
    with start(app, name=f"test-{__name__}") as running:
        yield running


async def post(server: RunningServer, path: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        return await http.post(server.url(path), data=form)


async def test_login_returns_a_bearer_token_for_the_user(server: RunningServer) -> None:
    response = await post(server, "/token", username="alice", password="wonderland")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    claims = decode_token(body["access_token"], SECRET)
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 120


async def test_wrong_password_is_401_with_a_bearer_challenge(server: RunningServer) -> None:
    response = await post(server, "/token", username="alice", password="builder")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Incorrect username or password"}


async def test_unknown_user_gets_the_same_401(server: RunningServer) -> None:
    response = await post(server, "/token", username="mallory", password="wonderland")
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}


async def test_login_without_a_password_is_422(server: RunningServer) -> None:
    assert (await post(server, "/token", username="alice")).status_code == 422


async def test_session_sets_an_httponly_samesite_cookie(server: RunningServer) -> None:
    response = await post(server, "/session", username="bob", password="builder")
    assert response.status_code == 200
    assert response.json() == {"user_id": "bob"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for attribute in ["HttpOnly", "SameSite=lax", "Path=/", "Max-Age=120"]:
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1; set over https


async def test_session_posted_from_another_sites_page_is_403_and_sets_no_cookie(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.post(
            server.url("/session"),
            data={"username": "bob", "password": "builder"},
            headers={"Origin": "http://evil.example"},
        )
    assert response.status_code == 403
    assert response.json() == {"detail": "Origin 'http://evil.example' is not allowed"}
    assert "set-cookie" not in response.headers


async def test_session_posted_from_the_servers_own_page_signs_in(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.post(
            server.url("/session"),
            data={"username": "bob", "password": "builder"},
            headers={"Origin": server.http_url.rstrip("/")},
        )
    assert response.status_code == 200
    assert response.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")


async def test_session_with_a_wrong_password_sets_no_cookie(server: RunningServer) -> None:
    response = await post(server, "/session", username="bob", password="wonderland")
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


async def test_session_cookie_opens_the_cookie_websocket(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        await http.post(server.url("/session"), data={"username": "bob", "password": "builder"})
        cookie = f"{SESSION_COOKIE}={http.cookies[SESSION_COOKIE]}"
    seen = await attempt(
        server.ws("/secure/ws/cookie"),
        '{"type": "refresh", "token": "x"}',  # ends the conversation: closes 4003
        additional_headers={"Cookie": cookie},
        timeout=wait_timeout(),
    )
    assert seen.received[0] == '{"type":"auth_success","user_id":"bob"}'


# GET /session and DELETE /session: what a page learns after a reload, and signing out


async def signed_in(http: httpx.AsyncClient, server: RunningServer) -> None:
    response = await http.post(
        server.url("/session"), data={"username": "alice", "password": "wonderland"}
    )
    assert response.status_code == 200


async def test_session_names_the_user_its_cookie_names(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        await signed_in(http, server)
        response = await http.get(server.url("/session"))
    assert response.status_code == 200
    assert response.json() == {"user_id": "alice"}


async def test_session_without_a_cookie_is_401_naming_the_cookie_login(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.get(server.url("/session"))
    assert response.status_code == 401
    assert response.json() == {"detail": "Not signed in"}
    assert response.headers["www-authenticate"].startswith('Cookie realm="course"')


@pytest.mark.parametrize("case", ["bad-signature", "alg-none", "empty-sub"])
async def test_session_with_a_forged_cookie_is_401_invalid_token(
    server: RunningServer, case: str
) -> None:
    cookies = {SESSION_COOKIE: REFUSED[case]()}
    async with httpx.AsyncClient(timeout=wait_timeout(10), cookies=cookies) as http:
        response = await http.get(server.url("/session"))
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token"}


async def test_session_with_an_expired_cookie_is_401_token_expired(server: RunningServer) -> None:
    expired = create_access_token("alice", SECRET, 60, now=time.time() - 120)
    async with httpx.AsyncClient(
        timeout=wait_timeout(10), cookies={SESSION_COOKIE: expired}
    ) as http:
        response = await http.get(server.url("/session"))
    assert response.status_code == 401
    assert response.json() == {"detail": "Token expired"}


async def test_signing_out_tells_the_browser_to_drop_the_cookie(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        await signed_in(http, server)
        response = await http.delete(server.url("/session"))
        after = await http.get(server.url("/session"))
    assert response.status_code == 204
    assert response.content == b""
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f'{SESSION_COOKIE}="";')  # no token left in it
    for attribute in ["HttpOnly", "SameSite=lax", "Path=/", "Max-Age=0"]:
        assert attribute in cookie
    assert SESSION_COOKIE not in http.cookies
    assert after.status_code == 401


async def test_signing_out_when_signed_out_is_fine(server: RunningServer) -> None:
    async with httpx.AsyncClient(timeout=wait_timeout(10)) as http:
        response = await http.delete(server.url("/session"))
    assert response.status_code == 204


# The cookie's Secure flag (COURSE_COOKIE_SECURE): explicit, and right behind a TLS proxy

PROXIED_HTTPS = {"X-Forwarded-Proto": "https"}


def cookie_server(policy: str, proxy: str) -> RunningServer:
    """A server whose ``Secure`` policy is ``policy``, trusting ``X-Forwarded-*`` from ``proxy``."""
    settings = Settings(jwt_secret=SECRET, cookie_secure=policy)
    app = create_app(settings)
    app.state.users = Users(settings.demo_users, hasher=CHEAP)
    return start(app, name=f"test-{__name__}-cookie", forwarded_allow_ips=proxy)


@pytest.mark.parametrize(
    ("policy", "proxy", "headers", "secure"),
    [
        ("auto", "127.0.0.1", {}, False),  # plain http
        ("auto", "127.0.0.1", PROXIED_HTTPS, True),  # https at a trusted proxy
        ("auto", "192.0.2.1", PROXIED_HTTPS, False),  # the proxy's address is not trusted
        ("true", "192.0.2.1", {}, True),  # a proxy uvicorn cannot trust: say so outright
        ("false", "127.0.0.1", PROXIED_HTTPS, False),
    ],
    ids=["auto-http", "auto-trusted-proxy", "auto-untrusted-proxy", "true", "false"],
)
async def test_session_cookie_is_secure_as_the_policy_says(
    policy: str, proxy: str, headers: dict[str, str], secure: bool
) -> None:
    with cookie_server(policy, proxy) as server:
        async with httpx.AsyncClient(timeout=wait_timeout(10), headers=headers) as http:
            form = {"username": "bob", "password": "builder"}
            signed_in = await http.post(server.url("/session"), data=form)
            signed_out = await http.delete(server.url("/session"))
    assert ("; secure" in signed_in.headers["set-cookie"].lower()) is secure
    assert ("; secure" in signed_out.headers["set-cookie"].lower()) is secure


def test_cookie_secure_setting_is_auto_true_or_false() -> None:
    assert Settings.from_env({"COURSE_COOKIE_SECURE": "TRUE"}).cookie_secure == "true"
    with pytest.raises(ValueError, match="cookie_secure must be auto, true or false"):
        Settings.from_env({"COURSE_COOKIE_SECURE": "yes"})
