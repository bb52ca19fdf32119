"""The whole machine's CPU use: how busy it was while a benchmark ran.

A server's own CPU time and memory come from ``course_server.tools.processes``; what is read here
is everyone's, so a run can tell how much of the machine other programs took meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

QUIET = 0.3
"""Cores' worth of CPU other programs may use while a 2-core machine benchmarks undisturbed."""


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


async def quiet(at_most: float, cores: float = QUIET) -> float:
    """Wait until other programs use less than ``cores`` (a shared machine), ``at_most`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + at_most
    busy = await asyncio.to_thread(machine_busy)
    while busy >= cores and loop.time() < deadline:
        busy = await asyncio.to_thread(machine_busy)
    return busy
