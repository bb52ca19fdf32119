"""Readiness is honest: ``GET /readyz`` is 503 while a configured Redis is unreachable.

``/healthz`` stays the liveness probe: the process answers, whatever Redis does. Each test with
Redis stops a real ``redis-server`` under two running servers and starts it again.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import eventually, wait_timeout
from redis_fixtures import bring_back

from course_server import RunningServer, Settings, start
from course_server.tools.redis_server import RedisServer

pytestmark = pytest.mark.anyio


async def get(server: RunningServer, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=wait_timeout()) as http:
        return await http.get(server.url(path))


@pytest.fixture(autouse=True)
def redis_comes_back(
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """After a test that stopped Redis, start it again for the next (only where Redis is used)."""
    yield
    if "servers" in request.fixturenames:
        bring_back(request.getfixturevalue("redis_server"), request.getfixturevalue("servers"))


async def test_without_redis_the_server_is_ready(server: RunningServer) -> None:
    response = await get(server, "/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


async def test_with_redis_up_every_server_is_ready(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    for server in servers:
        assert (await get(server, "/readyz")).status_code == 200


async def test_while_redis_is_down_readyz_is_503_with_the_reason(
    redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]
) -> None:
    redis_server.stop()
    for server in servers:
        response = await get(server, "/readyz")
        assert response.status_code == 503
        assert response.json()["status"] == "unavailable"
        assert "Redis" in response.json()["reason"]


async def test_while_redis_is_down_healthz_still_says_ok(
    redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]
) -> None:
    redis_server.stop()
    response = await get(servers[0], "/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_once_redis_is_back_readyz_is_200_again(
    redis_server: RedisServer, servers: tuple[RunningServer, RunningServer]
) -> None:
    redis_server.stop()
    assert (await get(servers[0], "/readyz")).status_code == 503
    redis_server.start()

    async def ready() -> bool:
        return all([(await get(server, "/readyz")).status_code == 200 for server in servers])

    await eventually(ready, timeout=10)


async def test_an_unreachable_redis_from_the_start_is_not_ready(redis_server: RedisServer) -> None:
    """A server whose Redis went away right after start-up: not ready, still alive."""
    settings = Settings(jwt_secret="t", redis_url=redis_server.url)
    with start(name="readyz-lonely", settings=settings) as server:
        redis_server.stop()
        try:
            assert (await get(server, "/readyz")).status_code == 503
            assert (await get(server, "/healthz")).status_code == 200
        finally:
            redis_server.start()
