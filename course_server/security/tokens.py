"""Lesson 06, tokens: log in with a password, get a signed JWT, and check one.

``POST /token`` follows FastAPI's OAuth2 password flow: a form with ``username`` and
``password`` in, ``{"access_token": JWT, "token_type": "bearer"}`` out, 401 with
``WWW-Authenticate: Bearer`` on a wrong password. ``POST /session`` takes the same form and puts
the token in an HttpOnly cookie instead, for browser pages (see ``secure.py`` for why that needs
an Origin check); ``GET /session`` tells a page whom its cookie names, ``DELETE /session`` signs
it out, and the token is refused from then on (``revocation``).

Fixed from the seed: PyJWT instead of the unmaintained ``python-jose``; the algorithm pinned on
decode, so ``alg: none`` and any other algorithm are refused; ``sub``, ``iat``, ``exp`` and
``jti`` required; passwords compared against argon2 hashes, never as plain text; logins
throttled (``throttle``): a few hashes at once, a few failures per name and address.

``verify(connection, token)`` is the one check every endpoint runs on a token: signed here, not
expired, not signed out.
"""

from __future__ import annotations

import functools
import secrets
import threading
import time
from collections.abc import Mapping
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pwdlib import PasswordHash
from pydantic import BaseModel
from starlette.requests import HTTPConnection

from course_server.security.origins import same_site
from course_server.security.throttle import LoginThrottle, TooManyFailures

router = APIRouter(tags=["lesson 06: authentication"])

ALGORITHM = "HS256"
SESSION_COOKIE = "session"
COOKIE_CHALLENGE = f'Cookie realm="course", form-action="/session", cookie-name="{SESSION_COOKIE}"'
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti"]

# argon2id with pwdlib's recommended cost: slow on purpose (a fraction of a second per hash),
# which is what makes a stolen hash expensive to crack.
password_hash = PasswordHash.recommended()


class TokenError(Exception):
    """A token to refuse; ``reason`` ("Invalid token", "Token expired") is safe to show clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenUnchecked(TokenError):
    """A token that cannot be checked now (Redis, which holds the sign-outs, is unreachable).

    Refused, since it may have been signed out; HTTP endpoints answer 503, not 401: the token
    may well be good.
    """


def unchecked(exc: TokenUnchecked) -> HTTPException:
    """The HTTP 503 for a token that cannot be checked now: try again in a moment."""
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=exc.reason,
        headers={"Retry-After": "1"},
    )


def create_access_token(
    subject: str, secret: str, lifetime: int, *, now: float | None = None
) -> str:
    """Sign a token for ``subject`` that expires ``lifetime`` seconds after ``now``.

    ``jti``, a random id, is what signing out records (``revocation``): a JWT cannot be recalled,
    but its id can be refused.
    """
    issued = int(time.time() if now is None else now)
    claims = {"sub": subject, "iat": issued, "exp": issued + lifetime, "jti": secrets.token_hex(16)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str) -> dict[str, Any]:
    """The claims of a token this server signed and that has not expired, or ``TokenError``.

    ``algorithms`` is the allow-list the token's own header is checked against. Without it, a
    library that trusts the header accepts ``alg: none`` (no signature at all) or lets an
    attacker pick an algorithm the key was never meant for.
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("Token expired") from None
    except jwt.InvalidTokenError:
        raise TokenError("Invalid token") from None
    if not claims["sub"] or not claims["jti"]:
        raise TokenError("Invalid token")
    return claims


async def verify(connection: HTTPConnection, token: str) -> dict[str, Any]:
    """The claims of a token this app signed, unexpired and not signed out; else ``TokenError``.

    The one check every endpoint runs (``secure.check`` for WebSockets), so that signing out is
    honoured everywhere.
    """
    claims = decode_token(token, connection.app.state.settings.jwt_secret)
    if await connection.app.state.revocations.revoked(claims["jti"]):
        raise TokenError("Token revoked")
    return claims


class Users:
    """The demo users (``app.state.users``), checked against argon2 hashes, never plain text.

    The hashes are computed once per app, on the first login, and the plain passwords dropped.
    Not at start-up: argon2 costs about a quarter of a second per hash on a small machine, and
    most apps the test suite builds never log anyone in. (Tests that log in many times may
    pass a cheaper ``hasher``.)
    """

    def __init__(self, passwords: Mapping[str, str], hasher: PasswordHash = password_hash) -> None:
        self.hasher = hasher
        self._plain = dict(passwords)
        self._hashes: dict[str, str] | None = None
        self._lock = threading.Lock()  # logins run in worker threads

    def _hashed(self) -> dict[str, str]:
        with self._lock:
            if self._hashes is None:
                self._hashes = {name: self.hasher.hash(pw) for name, pw in self._plain.items()}
                self._plain.clear()
            return self._hashes

    def authenticate(self, username: str, password: str) -> bool:
        """True if ``password`` is ``username``'s. Slow on purpose: call it off the event loop."""
        hashes = self._hashed()
        if not hashes:
            return False
        stored = hashes.get(username)
        # An unknown name costs a verification too (against some user's hash, the result thrown
        # away), so the time a login takes does not tell which names exist.
        matches = self.hasher.verify(password, stored or next(iter(hashes.values())))
        return matches and stored is not None


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class SessionInfo(BaseModel):
    user_id: str


async def issue_token(request: Request, form: OAuth2PasswordRequestForm) -> str:
    """A fresh token for the form's user, HTTP 401 that names no culprit, or 429 when throttled.

    The password is checked in a worker thread (argon2 would stall the event loop, and every
    open WebSocket with it, for the length of a hash), under the throttle's limits.
    """
    users: Users = request.app.state.users
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    check = functools.partial(users.authenticate, form.username, form.password)
    try:
        ok = await throttle.check(form.username, address, check)
    except TooManyFailures as exc:
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail="Too many failed logins: try again later",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    if not ok:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    settings = request.app.state.settings
    return create_access_token(form.username, settings.jwt_secret, settings.token_lifetime)


THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many failed logins; ``Retry-After`` says how long"}
}


@router.post("/token", responses=THROTTLED)
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """OAuth2 password flow: ``username`` and ``password`` as a form → a bearer token."""
    return Token(access_token=await issue_token(request, form))


def cookie_secure(request: Request) -> bool:
    """Should the session cookie be ``Secure``? ``settings.cookie_secure``: auto, true or false.

    ``auto`` follows the request's scheme. Behind a TLS proxy that scheme is https only if
    uvicorn trusts the proxy's ``X-Forwarded-Proto``: its address must be in uvicorn's
    ``forwarded_allow_ips`` (``FORWARDED_ALLOW_IPS``; 127.0.0.1 by default), or set ``true``.
    """
    policy = request.app.state.settings.cookie_secure
    return policy == "true" or (policy == "auto" and request.url.scheme == "https")


@router.post("/session", dependencies=[Depends(same_site)], responses=THROTTLED)
async def login_with_cookie(
    request: Request,
    response: Response,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> SessionInfo:
    """The same login, but the token goes into an HttpOnly cookie that page scripts cannot read.

    SameSite=Lax keeps the cookie off requests that other *sites* start, in browsers that
    support it; other pages of the same site (another port on localhost, a sibling subdomain)
    still get it. ``Secure`` as ``cookie_secure`` says. A form posted from another origin is
    refused (``origins.same_site``), so no other page can sign this browser in.
    """
    token = await issue_token(request, form)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=request.app.state.settings.token_lifetime,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
    )
    return SessionInfo(user_id=form.username)


@router.get("/session", responses={401: {"description": "No valid session cookie"}})
async def current_session(request: Request) -> SessionInfo:
    """Whom the ``session`` cookie names: a page's script cannot read an HttpOnly cookie itself.

    401 without a valid one. The challenge names the cookie login (the ``Cookie`` scheme of
    draft-broyer-http-cookie-auth): no registered HTTP scheme describes a form that sets a cookie.
    """
    token = request.cookies.get(SESSION_COOKIE)
    reason = "Not signed in"
    if token:
        try:
            claims = await verify(request, token)
        except TokenUnchecked as exc:
            raise unchecked(exc) from None
        except TokenError as exc:
            reason = exc.reason
        else:
            return SessionInfo(user_id=claims["sub"])
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=reason,
        headers={"WWW-Authenticate": COOKIE_CHALLENGE},
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, response: Response) -> None:
    """Sign out: the browser drops the cookie. Signed out already is fine too (still 204).

    The cookie's token is refused by every endpoint from now on, on every process (its ``jti``
    goes on the deny list until it expires), so a copy of it taken earlier is worthless too.
    """
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            claims = decode_token(token, request.app.state.settings.jwt_secret)
        except TokenError:
            pass  # forged or expired: nothing to recall
        else:
            await request.app.state.revocations.revoke(claims["jti"], claims["exp"])
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=cookie_secure(request)
    )


# auto_error=False: a missing token gets the same JSON 401 (and challenge) as a bad one.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


async def bearer_claims(
    request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
) -> dict[str, Any]:
    """A dependency: the claims of the request's ``Authorization: Bearer`` token, or HTTP 401."""
    if not token:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return await verify(request, token)
    except TokenUnchecked as exc:
        raise unchecked(exc) from None
    except TokenError as exc:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=exc.reason,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
