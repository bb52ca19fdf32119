"""Refuse requests whose ``Host`` is not one of the server's names (DNS rebinding).

A page on ``attacker.example`` can make its own name resolve to 127.0.0.1 a moment after it has
loaded. From then on the browser sends that page's requests to the course server, with
``Host: attacker.example:PORT`` and an ``Origin`` of the same name: same-origin as far as the
browser knows, and a check that trusted the ``Host`` header would agree. So the server's names
come from what it knows itself, never from the request: the loopback names at the port the
connection reached (``scope["server"]``, the local end of the socket), that address itself, and
``COURSE_ALLOWED_HOSTS``. Any other ``Host``, on HTTP or on a WebSocket handshake, gets a 400.

``COURSE_ALLOWED_HOSTS`` entries are ``name`` (any port), ``name:port``, ``*.example.com`` (its
subdomains) or ``*`` (anything: a proxy in front checks the name). Starlette's
``TrustedHostMiddleware`` does the same for fixed names; this one also knows the port, which is
only known once the server is bound, and answers a WebSocket handshake with a real 400.

Behind jupyter-server-proxy (hosted Jupyter) requests carry the hub's ``Host`` and ``Origin``:
``runner.start()`` adds the host of an absolute ``COURSE_PUBLIC_URL`` to the configured names,
that name alone (``runner.with_public_host``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Iterable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from course_server.realtime.closecodes import CloseCode

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
REFUSAL = "Invalid host header"

Server = tuple[str, int | None] | None
"""ASGI's ``scope["server"]``: the local address the connection reached."""


def split_host(value: str, scheme: str = "http") -> tuple[str, int | None] | None:
    """``"Example.com:80"`` → ``("example.com", 80)``; the scheme's port when none is given.

    ``None`` for what is no host at all (empty, a bad port, unbalanced brackets).
    """
    value = value.strip().lower()
    if not value or any(c in value for c in "/@?#\\ \t"):
        return None
    if value.startswith("["):  # an IPv6 literal keeps its brackets, as in a URL
        end = value.find("]")
        name, rest = value[: end + 1], value[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        name, _, port_text = value.partition(":")
    if not name:
        return None
    if not port_text:
        return name, DEFAULT_PORTS.get(scheme)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclasses.dataclass(frozen=True)
class HostRule:
    """One allowed name: ``name`` exactly or, with ``subdomains``, any name under it."""

    name: str
    port: int | None  # None: any port
    subdomains: bool = False

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        entry = entry.strip().lower()
        subdomains = entry.startswith("*.")
        parsed = split_host(entry.removeprefix("*"), scheme="")
        if parsed is None or (entry.startswith("*") and not subdomains):
            raise ValueError(f"not a host name: {entry!r} (name, name:port or *.domain)")
        name, port = parsed
        return cls(name, port, subdomains)

    def matches(self, name: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        return name.endswith(self.name) if self.subdomains else name == self.name


class AllowedHosts:
    """The server's names: its own at the port a connection reached, and the configured ones."""

    def __init__(self, configured: Iterable[str] = ()) -> None:
        entries = [entry.strip() for entry in configured if entry.strip()]
        self.any = "*" in entries
        self.rules = tuple(HostRule.parse(entry) for entry in entries if entry != "*")

    def own(self, server: Server, *, any_port: bool = False) -> tuple[HostRule, ...]:
        """Loopback names and the address the connection reached: at the server's port, or any."""
        names = {*LOOPBACK_NAMES, *([_bracketed(server[0]).lower()] if server else [])}
        port = None if any_port or not server else server[1]
        return tuple(HostRule(name, port) for name in sorted(names))

    def named(self, name: str, port: int | None, server: Server, *, any_port: bool = False) -> bool:
        """Is ``name:port`` this server, by its own names or a configured one (not ``*``)?"""
        rules = (*self.own(server, any_port=any_port), *self.rules)
        return any(rule.matches(name, port) for rule in rules)

    def allows(self, host: str | None, scheme: str, server: Server) -> bool:
        """May a request with this ``Host`` header reach the app?

        The server's own names count at any port: a loopback name cannot be rebound, and a
        client reaching the server through a forwarded port (a TCP proxy such as lesson 01's
        byte counter, ``docker run -p 8080:8000``) names the port it connected to. An *origin*
        must be at the server's own port (``origins``): another local app's page is not ours.
        """
        if self.any:
            return True
        parsed = split_host(host or "", scheme)
        return parsed is not None and self.named(*parsed, server, any_port=True)


def header(scope: Scope, name: bytes) -> str | None:
    """The first header ``name`` (lower-case bytes) of an ASGI scope, decoded."""
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def only_host(scope: Scope) -> str | None:
    """The request's one ``Host`` header; None if it has none or several.

    Several are a 400 (RFC 9112 §3.2): the guard checks one, and a proxy or library that reads
    another would act on a name never checked.
    """
    hosts = [value for key, value in scope.get("headers", ()) if key == b"host"]
    return hosts[0].decode("latin-1") if len(hosts) == 1 else None


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
        await send({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION, "reason": body})


class HostGuard:
    """ASGI middleware: a request or handshake whose ``Host`` is not the server's gets a 400."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = AllowedHosts(allowed_hosts)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not ``async``: what passes is handed on as the app's own awaitable, so this guard keeps
        # no coroutine frame of its own for as long as a WebSocket is held (lesson 09's memory).
        if scope["type"] not in ("http", "websocket") or self.hosts.allows(
            only_host(scope), scope.get("scheme", "http"), scope.get("server")
        ):
            return self.app(scope, receive, send)
        if scope["type"] == "http":
            return PlainTextResponse(REFUSAL, status_code=400)(scope, receive, send)
        return reject_handshake(scope, send, 400, REFUSAL)
