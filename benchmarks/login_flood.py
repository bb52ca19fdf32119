"""Login flood: what N concurrent wrong logins cost a ``python -m course_server`` process.

``python -m benchmarks.login_flood --logins 40`` starts a server (real argon2 at pwdlib's
recommended cost, ~64 MiB per hash), logs in wrongly once to warm it up (the first login hashes
the demo users' passwords), then sends N wrong ``POST /token`` at once, each from a loopback
address and a username of its own so that the failure limits never refuse one: every login is
hashed. It prints the server's resident memory before and at its peak (sampled every 5 ms), the
answers' status codes, and the slowest round trip on a ``/ws/echo`` connection opened before the
flood, while it ran.

The Security contract bounds the growth at 300 MB for 40 logins; on main before the throttle,
40 logins grew the server from 119 MB to 2.6 GB and stalled the echo for 1.9 s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import threading
import time

import httpx
import psutil
from websockets.asyncio.client import connect

from course_server.tools.processes import spawn
from course_server.urls import ServerURLs

MiB = 1024 * 1024


def loopback(n: int) -> str:
    """The n-th loopback address after 127.0.0.1 (127.0.0.2, 127.0.0.3, … 127.0.x.y)."""
    n += 1
    return f"127.0.{n // 250}.{n % 250 + 2}"


class PeakMemory:
    """The highest resident memory of process ``pid`` while in the ``with`` block (sampled)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(0.005)

    def __enter__(self) -> PeakMemory:
        self._sampler.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._sampler.join()


@dataclasses.dataclass
class Flood:
    baseline: int  # bytes resident before the flood
    peak: int  # bytes resident at the flood's peak
    codes: collections.Counter[int]
    echo_worst: float | None  # seconds, the slowest echo round trip meanwhile (if probed)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def wrong_login(server: ServerURLs, n: int, timeout: float) -> int:
    """One wrong ``POST /token`` from loopback address n, as user ``guess-n``; its status."""
    transport = httpx.AsyncHTTPTransport(local_address=loopback(n))
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
        form = {"username": f"guess-{n}", "password": "wrong"}
        return (await http.post(server.url("/token"), data=form)).status_code


async def flood(
    server: ServerURLs, pid: int, logins: int = 40, *, probe: bool = False, timeout: float = 120
) -> Flood:
    """Warm the server up, then ``logins`` wrong logins at once; what they cost it."""
    await wrong_login(server, 0, timeout)
    baseline = psutil.Process(pid).memory_info().rss
    worst: float | None = None
    done = asyncio.Event()

    async def echo() -> None:
        nonlocal worst
        async with connect(server.ws("/ws/echo")) as websocket:  # open before the flood
            while not done.is_set():
                started = time.perf_counter()
                await websocket.send("ping")
                await asyncio.wait_for(websocket.recv(), timeout)
                worst = max(worst or 0.0, time.perf_counter() - started)

    with PeakMemory(pid) as memory:
        prober = asyncio.create_task(echo()) if probe else None
        guesses = (wrong_login(server, n, timeout) for n in range(1, logins + 1))
        codes = await asyncio.gather(*guesses)
        done.set()
        if prober is not None:
            await prober
    return Flood(baseline, memory.peak, collections.Counter(codes), worst)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=40, help="concurrent wrong logins")
    args = parser.parse_args()
    with spawn() as server:
        result = asyncio.run(flood(server, server.pid, args.logins, probe=True))
    echo = f"{result.echo_worst * 1000:.0f} ms" if result.echo_worst is not None else "-"
    print(f"{'logins':<28}{args.logins}")
    print(f"{'answers':<28}{dict(sorted(result.codes.items()))}")
    print(f"{'memory before':<28}{result.baseline / MiB:.0f} MiB")
    print(f"{'memory at peak':<28}{result.peak / MiB:.0f} MiB")
    print(f"{'growth':<28}{result.growth / MiB:.0f} MiB (contract: < 300 MB)")
    print(f"{'slowest /ws/echo meanwhile':<28}{echo}")


if __name__ == "__main__":
    main()
