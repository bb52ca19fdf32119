"""Credentials for tests: a cheap password hasher, a bearer header, a client from any address.

``POST /notifications`` needs a token (``bearer``). The app hashes passwords with argon2 at
pwdlib's recommended cost; tests that log in many times use ``CHEAP``, argon2 at its lowest cost,
which behaves the same and takes microseconds. The login throttle counts failures per client
address: ``client_from`` makes each test's requests come from a loopback address of its own.
"""

from __future__ import annotations

import itertools

import httpx
from conftest import wait_timeout
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from benchmarks.login_flood import loopback
from course_server.security.tokens import create_access_token

CHEAP = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))

_hosts = itertools.count(1)


def bearer(app: FastAPI, user: str = "alice", lifetime: int = 600) -> dict[str, str]:
    """``Authorization: Bearer T`` with a token ``app`` signed for ``user`` (as ``POST /token``)."""
    token = create_access_token(user, app.state.settings.jwt_secret, lifetime)
    return {"Authorization": f"Bearer {token}"}


def fresh_address() -> str:
    """A loopback address no other call returned (127.0.0.2, 127.0.0.3, … 127.0.x.y)."""
    return loopback(next(_hosts))


def client_from(address: str | None = None, timeout: float = 10) -> httpx.AsyncClient:
    """An HTTP client whose connections come from ``address`` (default: a fresh one)."""
    transport = httpx.AsyncHTTPTransport(local_address=address or fresh_address())
    return httpx.AsyncClient(transport=transport, timeout=wait_timeout(timeout))
