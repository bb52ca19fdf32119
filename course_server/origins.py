"""Refuse WebSocket handshakes from pages on other sites (cross-site WebSocket hijacking).

Browsers send cookies with a WebSocket handshake to any site, and the same-origin policy does not
apply to WebSockets: a page on ``evil.example`` may open ``ws://your-server/…`` and the browser
will attach your user's cookies. The one thing it cannot forge is the ``Origin`` header, so the
server checks it. Non-browser clients send no ``Origin`` at all and are let through: they carry no
one else's cookies. ``Origin: null`` (sandboxed iframes, ``file://`` pages) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send


def own_origins(host_header: str, server_port: int | None) -> set[str]:
    """The origins that count as "this server": the Host it was reached by, and loopback names."""
    origins = {f"http://{host_header}", f"https://{host_header}"} if host_header else set()
    if server_port is not None:
        for name in ("127.0.0.1", "localhost"):
            origins.add(f"http://{name}:{server_port}")
    return origins


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """No Origin: allowed. Otherwise it must be in ``allowed`` (compared without a trailing /)."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    normalised = f"{parts.scheme}://{parts.netloc}".lower() if parts.netloc else origin.lower()
    return normalised in {a.rstrip("/").lower() for a in allowed}


def same_site(request: Request) -> None:
    """A dependency for forms that set a cookie: refuse (403) a post from another site's page.

    The twin of the handshake check, for ``POST /session``: without it, a page on another site
    could post *its own* credentials there and sign the visitor's browser in as the attacker
    (login CSRF), whose chat the visitor would then use unawares.
    """
    origin = request.headers.get("origin")
    server = request.scope.get("server") or (None, None)
    configured = request.app.state.settings.allowed_origins
    allowed = configured or own_origins(request.headers.get("host", ""), server[1])
    if not origin_allowed(origin, allowed):
        raise HTTPException(403, f"Origin {origin!r} is not allowed")


class OriginGuard:
    """ASGI middleware answering a disallowed WebSocket ``Origin`` with HTTP 403 and a reason."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.configured = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        server = scope.get("server") or (None, None)
        allowed = self.configured or own_origins(headers.get("host", ""), server[1])
        if origin_allowed(origin, allowed):
            await self.app(scope, receive, send)
            return
        await reject_handshake(scope, send, 403, f"Origin {origin!r} is not allowed")


async def reject_handshake(scope: Scope, send: Send, status: int, body: str) -> None:
    """Refuse a WebSocket handshake with a real HTTP status and a plain-text body.

    Servers without the ASGI denial-response extension can only close before accept, which the
    client sees as a bare 403.
    """
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body.encode()})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": body})
