"""Lesson 02, how a WebSocket ends: close codes, and refusing a handshake the right way.

A close code only reaches the client in a close frame, and a close frame only exists on an open
connection. Close *before* ``accept()`` and there is no connection yet: the server has to answer
the HTTP handshake instead, and uvicorn answers ``403 Forbidden`` with an empty body. The code
and reason are lost. To tell a client why, either accept and then close with a code
(``close_after_accept``), or answer the handshake with an HTTP response of your own
(``deny``, the ASGI "WebSocket Denial Response" extension, which uvicorn supports).
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from course_server.realtime.closecodes import CloseCode

router = APIRouter()

# Codes an endpoint may put in a close frame (RFC 6455 §7.4, IANA registry). 1005, 1006 and
# 1015 are never sent: a client reports them when no code arrived or TLS failed.
SENDABLE = {1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)}
MAX_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, 2 of them the code


def close_request(text: str) -> tuple[int, str] | str:
    """Parse ``close CODE [REASON]`` into ``(code, reason)``, or return what is wrong with it."""
    verb, _, rest = text.partition(" ")
    raw_code, _, reason = rest.partition(" ")
    if verb != "close" or not raw_code.isdigit():
        return "send: close CODE [REASON], e.g. close 4001 Token required"
    code = int(raw_code)
    if code not in SENDABLE:
        return f"{code} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999"
    if len(reason.encode()) > MAX_REASON_BYTES:
        return f"the reason is {len(reason.encode())} bytes; at most {MAX_REASON_BYTES} fit"
    return code, reason


@router.websocket("/ws/closer")
async def closer(websocket: WebSocket) -> None:
    """Closes with the code and reason the client asks for: ``close 4001 Token required``.

    Anything else gets a text reply saying what went wrong; the connection stays open.
    """
    await websocket.accept()
    try:
        while True:
            request = close_request(await websocket.receive_text())
            if isinstance(request, str):
                await websocket.send_text(request)
                continue
            code, reason = request
            await websocket.close(code=code, reason=reason)
            return
    except WebSocketDisconnect:
        return


@router.websocket("/ws/close-before-accept")
async def close_before_accept(websocket: WebSocket, token: str | None = None) -> None:
    """The seed's mistake: closing with 4001 *before* accept. The client sees HTTP 403 only."""
    if not token:
        await websocket.close(code=CloseCode.AUTH_REQUIRED, reason="Token required")
        return
    await websocket.accept()
    await websocket.send_text("Welcome!")
    await websocket.close()


@router.websocket("/ws/close-after-accept")
async def close_after_accept(websocket: WebSocket, token: str | None = None) -> None:
    """The fix: accept, then close with 4001. The client gets the code and the reason."""
    await websocket.accept()
    if not token:
        await websocket.close(code=CloseCode.AUTH_REQUIRED, reason="Token required")
        return
    await websocket.send_text("Welcome!")
    await websocket.close()


@router.websocket("/ws/deny")
async def deny(websocket: WebSocket, token: str | None = None) -> None:
    """The other fix: refuse the handshake with a real HTTP 401 and a JSON body.

    Nothing is accepted, so no WebSocket ever opens. Browsers hide the status from JavaScript
    (``onclose`` sees 1006), but every other client, and the access log, sees the 401.
    """
    if not token:
        response = JSONResponse({"detail": "Token required"}, status_code=401)
        await websocket.send_denial_response(response)
        return
    await websocket.accept()
    await websocket.send_text("Welcome!")
    await websocket.close()
