"""Refuse WebSocket handshakes from pages on other sites (cross-site WebSocket hijacking).

Browsers send cookies with a WebSocket handshake to any site, and the same-origin policy does not
apply to WebSockets: a page on ``evil.example`` may open ``ws://your-server/…`` and the browser
will attach your user's cookies. The one thing it cannot forge is the ``Origin`` header, so the
server checks it. Non-browser clients send no ``Origin`` at all and are let through: they carry no
one else's cookies. ``Origin: null`` (sandboxed iframes, ``file://`` pages) is refused.

Unless ``COURSE_ALLOWED_ORIGINS`` names them, the allowed origins are the server's own: http(s) on
one of its names (``hosts``). Never the request's ``Host`` header: after DNS rebinding, an
attacker's page sends ``Host`` and ``Origin`` of the same foreign name, and would pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from course_server.security.hosts import AllowedHosts, Server, header, reject_handshake, split_host

__all__ = ["OriginGuard", "origin_allowed", "reject_handshake", "same_site", "server_origin"]


def server_origin(origin: str, hosts: AllowedHosts, server: Server) -> bool:
    """Is ``origin`` a page of this server: http(s) on one of its names (``*`` does not count)?

    The names come from the server itself (``hosts``), never from the request's ``Host``.
    """
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    parsed = split_host(parts.netloc, parts.scheme)
    return parsed is not None and hosts.named(*parsed, server)


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """No Origin: allowed. Otherwise it must be in ``allowed`` (compared without a trailing /)."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    normalised = f"{parts.scheme}://{parts.netloc}".lower() if parts.netloc else origin.lower()
    return normalised in {a.rstrip("/").lower() for a in allowed}


def allowed_here(
    origin: str | None, configured: Iterable[str], hosts: AllowedHosts, server: Server
) -> bool:
    """The configured origins if any, else this server's own (see ``server_origin``)."""
    configured = tuple(configured)
    if configured or origin is None:
        return origin_allowed(origin, configured)
    return server_origin(origin, hosts, server)


def same_site(request: Request) -> None:
    """A dependency for forms that set a cookie: refuse (403) a post from another site's page.

    The twin of the handshake check, for ``POST /session``: without it, a page on another site
    could post *its own* credentials there and sign the visitor's browser in as the attacker
    (login CSRF), whose chat the visitor would then use unawares.
    """
    origin = request.headers.get("origin")
    configured = request.app.state.settings.allowed_origins
    hosts = request.app.state.hosts
    if not allowed_here(origin, configured, hosts, request.scope.get("server")):
        raise HTTPException(403, f"Origin {origin!r} is not allowed")


class OriginGuard:
    """ASGI middleware answering a disallowed WebSocket ``Origin`` with HTTP 403 and a reason."""

    def __init__(
        self, app: ASGIApp, allowed_origins: Iterable[str] = (), allowed_hosts: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.configured = tuple(allowed_origins)
        self.hosts = AllowedHosts(allowed_hosts)  # the server's names: its own origins

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not ``async``: what passes is handed on as the app's own awaitable, so this guard keeps
        # no coroutine frame of its own for as long as a WebSocket is held (lesson 09's memory).
        if scope["type"] != "websocket":
            return self.app(scope, receive, send)
        origin = header(scope, b"origin")
        if allowed_here(origin, self.configured, self.hosts, scope.get("server")):
            return self.app(scope, receive, send)
        return reject_handshake(scope, send, 403, f"Origin {origin!r} is not allowed")
