"""The slowloris attack, measured: how long slow clients hold a ``python -m course_server``.

``python -m benchmarks.slowloris`` starts the server on 127.0.0.1 (``--port 0``), opens
``--clients`` HTTP connections that send a header line every ``--interval`` seconds and never
finish, and ``--handshakes`` WebSocket upgrades that stop before their blank line, then prints
when the server cut each kind, and what a well-behaved client's ``GET /healthz`` took meanwhile.
Every loop is bounded by ``--give-up`` seconds. ``--header-timeout`` is the server's
``COURSE_HEADER_TIMEOUT`` (default 10, the setting's default).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from course_server.clients.handshake import upgrade_request
from course_server.clients.misbehave import slow_headers
from course_server.tools import processes


async def fast_client(url: str, until: asyncio.Event) -> list[float]:
    """``GET /healthz`` round trips (seconds) while the attack runs."""
    times = []
    async with httpx.AsyncClient(timeout=10) as http:
        while not until.is_set():
            started = time.monotonic()
            (await http.get(url)).raise_for_status()
            times.append(time.monotonic() - started)
            await asyncio.sleep(0.2)  # a polite client's pace, not a wait for readiness
    return times


def summary(cut: list[float | None]) -> str:
    done = sorted(t for t in cut if t is not None)
    if not done:
        return f"none of {len(cut)} cut"
    return (
        f"{len(done)}/{len(cut)} cut; median {statistics.median(done):.1f} s, last {done[-1]:.1f} s"
    )


async def attack(args: argparse.Namespace, port: int, url: str) -> None:
    http_head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    ws_head = upgrade_request("127.0.0.1", port, "/ws/echo").removesuffix(b"\r\n")
    stop = asyncio.Event()
    fast = asyncio.create_task(fast_client(url, stop))
    slow = [slow_headers(port, http_head, args.interval, args.give_up) for _ in range(args.clients)]
    half = [
        slow_headers(port, ws_head, args.interval, args.give_up) for _ in range(args.handshakes)
    ]
    results = await asyncio.gather(*slow, *half)
    stop.set()
    healthz = await fast
    print(f"COURSE_HEADER_TIMEOUT={args.header_timeout} s, a header every {args.interval} s")
    print(f"{args.clients} slowloris HTTP clients:      {summary(results[: args.clients])}")
    print(f"{args.handshakes} half-sent WebSocket handshakes: {summary(results[args.clients :])}")
    print(f"GET /healthz meanwhile: {len(healthz)} requests, max {max(healthz) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.slowloris", description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--handshakes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--give-up", type=float, default=150.0)
    args = parser.parse_args()
    env = {"COURSE_HEADER_TIMEOUT": str(args.header_timeout)}
    with processes.spawn(env=env) as server:
        port = int(server.http_url.rsplit(":", 1)[1])
        asyncio.run(attack(args, port, server.url("/healthz")))


if __name__ == "__main__":
    main()
