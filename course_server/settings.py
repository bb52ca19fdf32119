"""Settings for the course server, read from ``COURSE_*`` environment variables.

This module is the one place a setting is defined. Each field's environment variable, meaning and
default are listed in the table below and in the README; ``python -m course_server`` flags
override the environment.

| variable | meaning | default |
|---|---|---|
| COURSE_REDIS_URL | Redis for cross-process rooms; empty = in-process broker | empty |
| COURSE_JWT_SECRET | HS256 signing key | random per process (the CLI warns) |
| COURSE_DEMO_USERS | ``name:password,…`` for ``POST /token`` | alice:wonderland,bob:builder |
| COURSE_AUTH_TIMEOUT | seconds to wait for first-message auth | 5 |
| COURSE_TOKEN_LIFETIME | seconds a token from ``POST /token`` stays valid | 900 |
| COURSE_ALLOWED_ORIGINS | origins allowed on WebSocket handshakes (comma-separated) | its own |
| COURSE_HISTORY_SIZE | chat messages kept per room | 50 |
| COURSE_MAX_MESSAGE_BYTES | largest WebSocket frame accepted (1009 beyond it) | 65536 |
| COURSE_RATE_LIMIT | messages/s per connection (any channel); 2× per user or guest IP; 0=off | 20 |
| COURSE_SEND_QUEUE_SIZE | frames queued per connection before it is cut off (4008) | 256 |
| COURSE_WS_PING_INTERVAL | seconds between protocol pings; 0 = no pings | 20 |
| COURSE_WS_PING_TIMEOUT | seconds to wait for a pong before dropping the peer | 20 |
| COURSE_WS_DEFLATE | permessage-deflate (CPU per receiver: lesson 10) | false |
| COURSE_LOG_LEVEL | uvicorn log level (``warning`` keeps notebooks quiet) | warning |
| COURSE_LOGIN_MAX_FAILURES | failed logins per username or client address before 429 | 5 |
| COURSE_LOGIN_WINDOW | seconds failed logins are counted for (and the 429 lasts) | 60 |
| COURSE_LOGIN_CONCURRENCY | password hashes run at once (argon2: ~64 MiB each) | 2 |
| COURSE_COOKIE_SECURE | ``Secure`` session cookie: ``auto`` (if https), true, false | auto |
| COURSE_ALLOWED_HOSTS | ``Host`` names besides its own (comma-separated; ``*``: any) | its own |
| COURSE_HEADER_TIMEOUT | seconds a client has to send a request's line and headers | 10 |
| COURSE_TEACHING_ROUTES | mount the seed's broken ``/naive/…`` endpoints | notebooks only |
| COURSE_GUESTS | non-demo-user names are open to anyone (false: sign in for every name) | true |
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Any

COOKIE_SECURE = ("auto", "true", "false")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _users(value: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for item in _csv(value):
        name, sep, password = item.partition(":")
        if not sep or not name or not password:
            raise ValueError(f"COURSE_DEMO_USERS entries look like name:password, got {item!r}")
        users[name] = password
    return users


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the app can be configured with; build one with ``Settings.from_env()``."""

    redis_url: str = ""
    # A fresh key per process keeps the demo safe by default: tokens die with the server.
    jwt_secret: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(32))
    demo_users: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"alice": "wonderland", "bob": "builder"}
    )
    auth_timeout: float = 5.0
    token_lifetime: int = 900
    # Empty means "the server's own origins", which are only known once it has a port.
    allowed_origins: tuple[str, ...] = ()
    history_size: int = 50
    max_message_bytes: int = 65536
    rate_limit: float = 20.0
    send_queue_size: int = 256
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    # Off: compression runs once per receiver; lesson 10 measures the server CPU it adds.
    ws_deflate: bool = False
    log_level: str = "warning"
    login_max_failures: int = 5
    login_window: float = 60.0
    # Each argon2 hash holds ~64 MiB while it runs: this caps the memory a login flood costs.
    login_concurrency: int = 2
    cookie_secure: str = "auto"
    # Empty means "its own names only" (127.0.0.1, localhost, [::1] at its port): DNS rebinding.
    allowed_hosts: tuple[str, ...] = ()
    header_timeout: float = 10.0
    # None: the launcher decides: the notebook runner mounts them, ``create_app`` alone does not.
    teaching_routes: bool | None = None
    guests: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.auth_timeout > 0, "auth_timeout must be > 0"),
            (self.token_lifetime > 0, "token_lifetime must be > 0"),
            (self.history_size >= 0, "history_size must be >= 0"),
            (self.max_message_bytes > 0, "max_message_bytes must be > 0"),
            (self.rate_limit >= 0, "rate_limit must be >= 0 (0 turns it off)"),
            (self.send_queue_size > 0, "send_queue_size must be > 0"),
            (self.ws_ping_interval >= 0, "ws_ping_interval must be >= 0 (0 turns pings off)"),
            (self.ws_ping_timeout > 0, "ws_ping_timeout must be > 0"),
            (self.login_max_failures > 0, "login_max_failures must be > 0"),
            (self.login_window > 0, "login_window must be > 0"),
            (self.login_concurrency > 0, "login_concurrency must be > 0"),
            (self.cookie_secure in COOKIE_SECURE, "cookie_secure must be auto, true or false"),
            (self.header_timeout > 0, "header_timeout must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``COURSE_*`` variables; keyword arguments win over the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        readers: dict[str, tuple[str, Callable[[str], object]]] = {
            "redis_url": ("COURSE_REDIS_URL", str),
            "jwt_secret": ("COURSE_JWT_SECRET", str),
            "demo_users": ("COURSE_DEMO_USERS", _users),
            "auth_timeout": ("COURSE_AUTH_TIMEOUT", float),
            "token_lifetime": ("COURSE_TOKEN_LIFETIME", int),
            "allowed_origins": ("COURSE_ALLOWED_ORIGINS", _csv),
            "history_size": ("COURSE_HISTORY_SIZE", int),
            "max_message_bytes": ("COURSE_MAX_MESSAGE_BYTES", int),
            "rate_limit": ("COURSE_RATE_LIMIT", float),
            "send_queue_size": ("COURSE_SEND_QUEUE_SIZE", int),
            "ws_ping_interval": ("COURSE_WS_PING_INTERVAL", float),
            "ws_ping_timeout": ("COURSE_WS_PING_TIMEOUT", float),
            "ws_deflate": ("COURSE_WS_DEFLATE", _flag),
            "log_level": ("COURSE_LOG_LEVEL", str),
            "login_max_failures": ("COURSE_LOGIN_MAX_FAILURES", int),
            "login_window": ("COURSE_LOGIN_WINDOW", float),
            "login_concurrency": ("COURSE_LOGIN_CONCURRENCY", int),
            "cookie_secure": ("COURSE_COOKIE_SECURE", str.lower),
            "allowed_hosts": ("COURSE_ALLOWED_HOSTS", _csv),
            "header_timeout": ("COURSE_HEADER_TIMEOUT", float),
            "teaching_routes": ("COURSE_TEACHING_ROUTES", _flag),
            "guests": ("COURSE_GUESTS", _flag),
        }
        for field, (variable, parse) in readers.items():
            raw = env.get(variable, "").strip()
            if raw:
                try:
                    values[field] = parse(raw)
                except ValueError as exc:
                    raise ValueError(f"{variable}={raw!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
