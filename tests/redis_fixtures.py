"""Fixtures for the tests that need Redis: a throwaway redis-server, and two servers sharing it.

Registered in ``conftest.py`` (``pytest_plugins``). Each is module-scoped: a test module gets a
Redis of its own, so keys from one module never meet another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from conftest import wait_timeout

from course_server import RunningServer, Settings, start
from course_server.tools.redis_server import RedisServer

SECRET = "test-secret-not-for-production-0123456789"  # 32+ bytes: PyJWT warns below


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(timeout=wait_timeout(10)) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def servers(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Servers "A" and "B" in threads of this process: all they share is what Redis holds."""
    settings = Settings(jwt_secret=SECRET, redis_url=redis_server.url)
    name = request.module.__name__
    a = start(name=f"{name}-a", settings=settings)
    b = start(name=f"{name}-b", settings=settings)
    yield a, b
    a.stop()
    b.stop()


def bring_back(redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]) -> None:
    """Start Redis again if a test left it down, and wait until both servers are subscribed."""
    redis_server.start()
    for server in servers:
        connected = server.app.state.backend.link.subscriber.connected
        server.call(asyncio.wait_for(connected.wait(), wait_timeout(10)))
