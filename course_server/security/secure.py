"""Lesson 06, authenticated WebSockets: the token in the URL, in the first message, or a cookie.

| endpoint | token comes | refused how |
|---|---|---|
| ``/secure/ws?token=T`` | in the query string | HTTP 401 before any WebSocket opens |
| ``/secure/ws/v2`` | in the first message | accepted, then closed 4001/4002/4003 |
| ``/secure/ws/cookie`` | in the ``session`` cookie (``POST /session``) | HTTP 401 |

The URL and cookie endpoints check the token *before* ``accept()`` and refuse with a denial
response: a real HTTP 401 with a JSON body, ``WWW-Authenticate: Bearer`` and no WebSocket. (The
seed closed with 4001 before accept instead, which reaches the client as a bare HTTP 403.)
Browsers hide a refused handshake's status from JavaScript; a page that must tell "bad token"
from "server down" should use the first-message endpoint, whose close codes it does see.

Once authenticated, every endpoint says ``{"type":"auth_success","user_id":U}`` and then echoes
``{"type":"echo","user_id":U,"message":M}``. When the token expires the connection is closed
with 4003 "Token expired", unless the client sent ``{"type":"refresh","token":T}`` in time with a
fresh token for the same user (answered ``{"type":"refresh_success"}``).

A cookie is sent by the browser whoever opens the socket, so cookie auth is only safe because
``origins.OriginGuard`` refuses handshakes from other origins (cross-site WebSocket hijacking).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from course_server.realtime.closecodes import CloseCode
from course_server.security.identity import Identity
from course_server.security.tokens import SESSION_COOKIE, TokenError, verify

router = APIRouter(tags=["lesson 06: authentication"])

TOKEN_REQUIRED = "Token required"


class AuthMessage(BaseModel):
    type: Literal["auth"]
    token: str


class RefreshMessage(BaseModel):
    type: Literal["refresh"]
    token: str


async def check(websocket: WebSocket, token: str) -> dict[str, Any]:
    """The token's claims, checked with this app's secret; ``TokenError`` if it is refused.

    ``tokens.verify``, the check every endpoint runs: a signed-out token is refused here too.
    """
    return await verify(websocket, token)


async def deny(websocket: WebSocket, reason: str) -> None:
    """Refuse the handshake: HTTP 401, ``{"detail": reason}``, and how to authenticate."""
    # RFC 6750 §3: a bare challenge when no token came, error="invalid_token" when one failed.
    challenge = "Bearer" if reason == TOKEN_REQUIRED else 'Bearer error="invalid_token"'
    response = JSONResponse(
        {"detail": reason}, status_code=401, headers={"WWW-Authenticate": challenge}
    )
    await websocket.send_denial_response(response)


async def handshake_auth(websocket: WebSocket, token: str | None) -> None:
    """Accept and serve the user if ``token`` is good; otherwise refuse the handshake."""
    if not token:
        await deny(websocket, TOKEN_REQUIRED)
        return
    try:
        claims = await check(websocket, token)
    except TokenError as exc:
        await deny(websocket, exc.reason)
        return
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await serve(websocket, claims)


@router.websocket("/secure/ws")
async def query_token(websocket: WebSocket, token: str | None = None) -> None:
    """Token in the query string, checked before the handshake is accepted."""
    await handshake_auth(websocket, token)


@router.websocket("/secure/ws/cookie")
async def cookie_token(websocket: WebSocket) -> None:
    """Token in the ``session`` cookie set by ``POST /session``; the Origin guard runs first."""
    await handshake_auth(websocket, websocket.cookies.get(SESSION_COOKIE))


@router.websocket("/secure/ws/v2")
async def first_message(websocket: WebSocket) -> None:
    """Accept, then expect ``{"type":"auth","token":T}`` within ``settings.auth_timeout``."""
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):  # the client left: nothing to tell it
        await authenticate_first_message(websocket)


async def authenticate_first_message(websocket: WebSocket) -> None:
    """After ``accept()``: close with 4002, 4001 or 4003, or serve the user the token names."""
    try:
        async with asyncio.timeout(websocket.app.state.settings.auth_timeout):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(CloseCode.AUTH_TIMEOUT, "Auth timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    try:
        auth = AuthMessage.model_validate_json(message.get("text") or "")
    except ValidationError:
        await websocket.close(CloseCode.AUTH_REQUIRED, "First message must be auth")
        return
    try:
        claims = await check(websocket, auth.token)
    except TokenError as exc:
        await websocket.close(CloseCode.INVALID_TOKEN, exc.reason)
        return
    await serve(websocket, claims)


async def serve(websocket: WebSocket, claims: dict[str, Any]) -> None:
    """Talk to an authenticated user until they leave or their token expires unrefreshed."""
    user = claims["sub"]
    expires = claims["exp"]
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        try:
            async with asyncio.timeout(max(0.0, expires - time.time())):
                message = await websocket.receive()
        except TimeoutError:
            await websocket.close(CloseCode.INVALID_TOKEN, "Token expired")
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        try:
            refresh = RefreshMessage.model_validate_json(text or "")
        except ValidationError:
            shown = text if text is not None else f"<{len(message['bytes'])} bytes>"
            await websocket.send_json({"type": "echo", "user_id": user, "message": shown})
            continue
        try:
            fresh = await check(websocket, refresh.token)
        except TokenError as exc:
            await websocket.close(CloseCode.INVALID_TOKEN, exc.reason)
            return
        if fresh["sub"] != user:
            await websocket.close(CloseCode.INVALID_TOKEN, "Token is for another user")
            return
        expires = fresh["exp"]
        await websocket.send_json({"type": "refresh_success"})


async def identify(websocket: WebSocket) -> Identity:
    """Who the connection proved to be: the user its token names (``?token=``, else the cookie).

    The one place a WebSocket's handshake token is checked for the endpoints that take a name
    (and for their rate-limit budgets); the answer is kept on the connection, so it is checked
    once however many names the connection claims.
    """
    known: Identity | None = websocket.scope.get("course.identity")
    if known is not None:
        return known
    client = websocket.client
    address = client.host if client is not None else ""
    token = websocket.query_params.get("token") or websocket.cookies.get(SESSION_COOKIE)
    identity = Identity(address=address)
    if token:
        try:
            claims = await check(websocket, token)
        except TokenError as exc:
            identity = Identity(refused=exc.reason, address=address)
        else:
            identity = Identity(user=claims["sub"], address=address)
    websocket.scope["course.identity"] = identity
    return identity


def claim_problem(websocket: WebSocket, identity: Identity, name: str) -> str | None:
    """Why ``identity`` may not go by ``name`` on this app (see ``identity.py``), or None."""
    settings = websocket.app.state.settings
    return identity.claim_problem(name, settings.demo_users, guests=settings.guests)


async def refuse_impostor(websocket: WebSocket, username: str) -> bool:
    """For endpoints that take a username: close 4003 unless this connection may use it.

    Call it right after ``accept()``. A registered user's name needs a token naming that user
    (``?token=`` or the session cookie); a guest name needs none, but a token given must be
    good and name it (and with ``COURSE_GUESTS=false`` every name needs one). Returns True if
    it closed the connection, so the caller stops before taking a seat.
    """
    reason = claim_problem(websocket, await identify(websocket), username)
    if reason is None:
        return False
    await websocket.close(CloseCode.INVALID_TOKEN, reason)
    return True
