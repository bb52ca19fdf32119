"""Start and stop real server processes (``python -m MODULE --port 0``) and read their URL.

The one launcher of the course: lesson 07 and its tests, the benchmarks and the load test use it.
A background thread (``runner.start``) shares the notebook's process; scaling out is about
*separate* processes, which share nothing but what they are given, such as a Redis. ``spawn()``
starts ``python -m course_server`` with ``--port 0``; ``start()`` any module that prints
``… serving on http://HOST:PORT`` as its first line (the benchmarks' servers do). Both read that
URL, wait until ``/healthz`` answers (unless told the server has none), and return. ``stop()`` is
a Ctrl+C (SIGINT: open WebSockets get 1001 and the process says goodbye to Redis), then a kill if
it has not exited in time; ``kill()`` is the crash the lesson needs: SIGKILL, no goodbye at all.
``cpu_seconds()`` and ``rss_mb()`` read what the process has cost so far (``/proc`` on Linux,
``psutil`` elsewhere).

Every course process started here gets the same ``COURSE_JWT_SECRET`` (unless the environment
sets one): processes behind one load balancer must accept each other's tokens.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Self

import httpx

from course_server.urls import ServerURLs

_SECRET = secrets.token_urlsafe(32)
_URL_LINE = re.compile(r"serving on (http://\S+)")
_running: set[ServerProcess] = set()
_readers: dict[int, threading.Thread] = {}  # pid → the thread draining its stdout
_stdout: dict[int, collections.deque[str]] = {}  # pid → its latest stdout lines (the access log)
STDOUT_LINES = 10_000  # kept per process: a long benchmark's access log must not grow forever
POLL_INTERVAL = 0.02  # seconds between /healthz tries: another process has no event to wait on


class ServerProcess(ServerURLs):
    """One ``python -m course_server`` process. Use ``spawn()`` to make one."""

    def __init__(self, process: subprocess.Popen[str], http_url: str, stderr: IO[str]) -> None:
        self.process = process
        self.http_url = http_url
        self._stderr = stderr
        self._log = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        """What the process wrote to stderr so far (its log)."""
        if self._stderr.closed:
            return self._log
        self._stderr.seek(0)
        return self._stderr.read()

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        return cpu_seconds(self.pid)

    def rss_mb(self, peak: bool = False) -> float:
        """Resident memory now, or (``peak``) its high-water mark, in MiB."""
        return rss_bytes(self.pid, peak) / 2**20

    def stdout(self) -> str:
        """Its latest stdout lines after the URL line (uvicorn's access log goes there)."""
        return "".join(_stdout.get(self.pid, ()))

    def stop(self, timeout: float = 10.0) -> int:
        """Ctrl+C, then SIGKILL if it has not exited after ``timeout`` s; return the exit code."""
        if self.running:
            end(self.process, signal.SIGINT, timeout)
        return self._reap()

    def kill(self) -> int:
        """SIGKILL: the process ends at once, saying goodbye to nobody (a crash)."""
        if self.running:
            self.process.kill()
        return self._reap()

    def _reap(self) -> int:
        code = self.process.wait()
        _running.discard(self)
        _close_stdout(self.process)
        if not self._stderr.closed:
            self._log = self.stderr()
            self._stderr.close()
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited ({self.process.returncode})"
        return f"<ServerProcess pid={self.pid} {state} at {self.http_url}>"


def end(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Send ``sig``, SIGKILL if the process has not exited after ``timeout`` s; its exit code.

    Any process the course starts ends this way: ``sig`` lets it say goodbye (Ctrl+C for a
    course server, SIGTERM for nginx and Redis), the SIGKILL bounds how long that may take.
    """
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def spawn(
    *,
    redis_url: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> ServerProcess:
    """Start ``python -m course_server --port 0`` (with ``--redis-url`` if given); return it ready.

    ``env`` adds to this process's environment (``COURSE_*`` settings, say). Raises
    ``RuntimeError`` (with the process's stderr) if it exits or is not ready in time.
    """
    options = ["--log-level", "warning"]
    if redis_url:
        options += ["--redis-url", redis_url]
    environ = {
        "COURSE_JWT_SECRET": os.environ.get("COURSE_JWT_SECRET", _SECRET),
        # No redis_url means no Redis, even if this process's environment names one.
        "COURSE_REDIS_URL": redis_url or "",
        **(env or {}),
    }
    return start("course_server", *options, *args, env=environ, timeout=timeout)


def start(
    module: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    ready_path: str | None = "/healthz",
    timeout: float = 20.0,
    cwd: str | Path | None = None,
) -> ServerProcess:
    """Start ``python -m MODULE --port 0 ARGS``; return it once it printed its URL and is ready.

    Ready means ``ready_path`` answers 200; ``None`` for a server without one, whose printed URL
    is then the sign that it listens. ``env`` adds to this process's environment. Raises
    ``RuntimeError`` (with the process's stderr) if it exits or is not ready in time.
    """
    command = [sys.executable, "-m", module, "--port", "0", *args]
    environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=environ,
        cwd=cwd,
    )
    deadline = time.monotonic() + timeout
    try:
        url = _read_url(process, deadline)
        server = ServerProcess(process, url, stderr)
        _running.add(server)
        if ready_path is not None:
            _wait_healthy(server, ready_path, deadline)
    except BaseException as exc:
        process.kill()
        process.wait()
        _close_stdout(process)
        stderr.seek(0)
        log = stderr.read().strip()
        stderr.close()
        if isinstance(exc, RuntimeError | TimeoutError):
            raise RuntimeError(f"{' '.join(command[1:])}: {exc}\n{log}") from None
        raise
    return server


def spawn_many(count: int, **options: Any) -> list[ServerProcess]:
    """``spawn(**options)`` ``count`` times, all starting at once (Python's start-up dominates)."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(spawn, **options) for _ in range(count)]
    started = [f.result() for f in futures if f.exception() is None]
    failed = [error for f in futures if (error := f.exception()) is not None]
    if failed:
        for server in started:
            server.stop()
        raise failed[0]
    return started


def _close_stdout(process: subprocess.Popen[str]) -> None:
    """After the process exited: let the thread reading its stdout see the end, then close it."""
    reader = _readers.pop(process.pid, None)
    if reader is not None:
        reader.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


def _read_url(process: subprocess.Popen[str], deadline: float) -> str:
    """The URL from the first line of stdout; a thread drains the rest so it never fills up."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None
    kept = _stdout[process.pid] = collections.deque(maxlen=STDOUT_LINES)

    def pump() -> None:
        first = True
        for line in stdout:
            if first:
                lines.put(line)
                first = False
            else:
                kept.append(line)
        lines.put("")  # end of output: the process exited

    reader = _readers[process.pid] = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise TimeoutError("printed no URL in time") from None
    match = _URL_LINE.search(first)
    if match is None:
        raise RuntimeError(f"exited, or printed no URL first: {first.strip()!r}")
    return match.group(1)


def _wait_healthy(server: ServerProcess, path: str, deadline: float) -> None:
    def exited() -> str | None:
        return None if server.running else f"exited with code {server.process.returncode}"

    wait_until_answers(server.url(path), deadline, exited)


def wait_until_answers(url: str, deadline: float, exited: Callable[[], str | None]) -> None:
    """Poll ``url`` until it answers 200, until ``deadline`` (``time.monotonic()``).

    ``exited()`` says why the process behind it is gone (``RuntimeError``), or ``None`` while it
    runs: a dead process fails at once instead of at the deadline.
    """
    with httpx.Client(timeout=1.0) as client:
        while True:
            if (why := exited()) is not None:
                raise RuntimeError(why)
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer in time")
            time.sleep(POLL_INTERVAL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command's name
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    import psutil  # no /proc here; Jupyter installs psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_bytes(pid: int, peak: bool = False) -> int:
    """Process ``pid``'s resident memory now, or (``peak``) its high-water mark, in bytes.

    Without ``/proc`` there is no high-water mark: ``peak`` then gives the memory now.
    """
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        wanted = "VmHWM:" if peak else "VmRSS:"
        for line in status.read_text().splitlines():
            if line.startswith(wanted):
                return int(line.split()[1]) * 1024  # in kB
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


def stop_all() -> None:
    """Stop every process started here that is still running (also runs at interpreter exit)."""
    for server in list(_running):
        server.stop()


atexit.register(stop_all)
