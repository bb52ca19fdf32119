"""A server under test in a process of its own: start it, read its URL, watch its CPU and memory.

Every server the benchmarks start prints ``… serving on http://127.0.0.1:PORT`` once it listens
(``python -m course_server --port 0`` does; so do the scripts beside this file). Memory is the
process's peak resident set (``VmHWM`` in ``/proc/PID/status``; where there is no ``/proc``, the
largest RSS psutil saw). CPU is user + system time, read before and after a measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
_URL = re.compile(rb"(http://127\.0\.0\.1:\d+)")

try:
    import psutil
except ImportError:  # optional: /proc gives the same figures on Linux
    psutil = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    if psutil is not None:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, peak: bool = False) -> float:
    """Resident memory now, or (``peak``) its high-water mark, in MiB."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        wanted = "VmHWM:" if peak else "VmRSS:"
        for line in status.read_text().splitlines():
            if line.startswith(wanted):
                return int(line.split()[1]) / 1024
    if psutil is not None:
        return psutil.Process(pid).memory_info().rss / 2**20
    return float("nan")


def busy_cpu_seconds() -> float:
    """CPU time all processes on the machine have used since boot (nan without /proc).

    User, nice and system time: not the kernel's interrupt work, which on loopback is mostly
    our own traffic, so what is left after our processes is other programs.
    """
    stat = Path("/proc/stat")
    if not stat.exists():
        return float("nan")
    user, nice, system = (int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def machine_busy(seconds: float = 1.0) -> float:
    """How many cores' worth of CPU the machine is using, averaged over ``seconds``."""
    before = busy_cpu_seconds()
    time.sleep(seconds)
    return (busy_cpu_seconds() - before) / seconds


class ServerProcess:
    """``python -m MODULE --port 0 …`` from the repository root, until ``stop()``."""

    def __init__(self, module: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.argv = [sys.executable, "-m", module, "--port", "0", *args]
        self.env = {**os.environ, **(env or {})}
        self.url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._log = tempfile.TemporaryFile()  # the server's stderr, shown if it fails
        self._peak_seen = 0.0

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    async def start(self, timeout: float = 20) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while not self.url:
                    line = await self._process.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.argv} exited: {self.stderr()}")
                    if match := _URL.search(line):
                        self.url = match[1].decode()
        except BaseException:
            await self.stop()
            raise
        return self

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        current = rss_mb(self.pid)
        self._peak_seen = max(self._peak_seen, current)
        return current

    def peak_rss_mb(self) -> float:
        peak = rss_mb(self.pid, peak=True)
        return max(peak, self._peak_seen)

    async def stop(self, timeout: float = 10) -> None:
        """SIGINT (a graceful shutdown), then SIGKILL if it is not gone within ``timeout``."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self._log.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
