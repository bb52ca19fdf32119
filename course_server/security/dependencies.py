"""Lesson 06, FastAPI's way: the token checked by a dependency that raises ``WebSocketException``.

A WebSocket endpoint takes dependencies like any path operation: ``Depends`` with ``Query`` and
``Cookie`` parameters, solved before the endpoint runs. A dependency refuses a connection by
raising ``WebSocketException(code, reason)``, and what the client sees depends on *when*:

| endpoint | raised | the client sees |
|---|---|---|
| ``/secure/ws/depends`` | before ``accept()`` | HTTP 403, no body: code and reason lost |
| ``/secure/ws/depends/accepted`` | after ``accept()`` | close 4001 or 4003, with the reason |

(``secure.deny``, lesson 06's ``/secure/ws``, is the third way: ``send_denial_response`` before
``accept()``, a real HTTP 401 with a body.) The token comes as ``?token=``, else in the
``session`` cookie (``POST /session``); an accepted connection is served as ``secure.serve``
serves the others.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Query, WebSocket, WebSocketDisconnect
from fastapi.exceptions import WebSocketException

from course_server.realtime.closecodes import CloseCode
from course_server.security.secure import TOKEN_REQUIRED, check, serve
from course_server.security.tokens import TokenError

router = APIRouter(tags=["lesson 06: authentication"])

Claims = dict[str, Any]


async def token_claims(
    websocket: WebSocket,
    token: Annotated[str | None, Query()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> Claims:
    """The claims of ``?token=`` or the ``session`` cookie; ``WebSocketException`` if refused."""
    given = token or session
    if not given:
        raise WebSocketException(CloseCode.AUTH_REQUIRED, TOKEN_REQUIRED)
    try:
        return await check(websocket, given)
    except TokenError as exc:
        raise WebSocketException(CloseCode.INVALID_TOKEN, exc.reason) from None


async def accepted_claims(
    websocket: WebSocket,
    token: Annotated[str | None, Query()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> Claims:
    """``token_claims``, after ``accept()``: a refusal then reaches the client as a close code."""
    await websocket.accept()
    return await token_claims(websocket, token, session)


@router.websocket("/secure/ws/depends")
async def depends_before_accept(
    websocket: WebSocket, claims: Annotated[Claims, Depends(token_claims)]
) -> None:
    """Checked by a dependency before the handshake: a refusal is a bare HTTP 403."""
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await serve(websocket, claims)


@router.websocket("/secure/ws/depends/accepted")
async def depends_after_accept(
    websocket: WebSocket, claims: Annotated[Claims, Depends(accepted_claims)]
) -> None:
    """Checked by a dependency after ``accept()``: a refusal is a close code and reason."""
    with contextlib.suppress(WebSocketDisconnect):
        await serve(websocket, claims)
