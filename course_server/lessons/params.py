"""Lesson 02, FastAPI's WebSocket dependencies: ``Depends`` with ``Query``, ``Header``, ``Cookie``.

A WebSocket endpoint takes the same parameters as an HTTP route, and a dependency can refuse the
connection by raising ``WebSocketException``. What the client sees depends on *when*:

- before ``accept()`` (a dependency, or a failed ``Query`` validation): FastAPI closes the
  handshake, and uvicorn answers it with a bare HTTP 403; the code and reason are lost;
- ``send_denial_response`` before ``accept()``: a real HTTP status and body (here 401);
- after ``accept()``: a close frame, with the exception's code and reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import (
    APIRouter,
    Cookie,
    Depends,
    Header,
    Query,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
)
from fastapi.responses import JSONResponse

from course_server.realtime.closecodes import CloseCode

router = APIRouter()

EXPIRED = "expired"  # the one token this demo treats as expired: refused with a real 401


def token(
    token: Annotated[str | None, Query()] = None,
    session: Annotated[str | None, Cookie()] = None,
) -> str:
    """The caller's credential: ``?token=`` or, for a browser, the ``session`` cookie."""
    credential = token or session
    if not credential:
        # Raised before accept(): the client gets HTTP 403, not this code and reason.
        raise WebSocketException(code=CloseCode.POLICY_VIOLATION, reason="token required")
    return credential


@router.websocket("/ws/params")
async def params(
    websocket: WebSocket,
    credential: Annotated[str, Depends(token)],
    room: Annotated[str, Query(min_length=1, max_length=20, pattern=r"^[a-z0-9-]+$")],
    user_agent: Annotated[str | None, Header()] = None,
) -> None:
    """Greets with what it was given, then echoes text; ``forbidden`` ends it with 1008.

    ``?token=expired`` is refused with ``send_denial_response``: a 401 with a JSON body.
    """
    if credential == EXPIRED:
        denial = JSONResponse({"detail": "token expired"}, status_code=401)
        await websocket.send_denial_response(denial)
        return
    await websocket.accept()
    await websocket.send_json({"room": room, "user_agent": user_agent})
    try:
        while (text := await websocket.receive_text()) != "bye":
            if text == "forbidden":
                # After accept(): FastAPI sends a close frame with this code and reason.
                raise WebSocketException(code=CloseCode.POLICY_VIOLATION, reason="not allowed")
            await websocket.send_text(text)
    except WebSocketDisconnect:
        return
    await websocket.close()
