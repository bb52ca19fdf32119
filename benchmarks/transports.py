"""Benchmark (b): polling vs WebSocket vs SSE, the cost of each delivered event, at scale.

Lesson 01's experiment (``course_server.lab.compare``) against a course server in its own process,
with more events, closer together: short polling at three intervals, a WebSocket with and without
permessage-deflate, and Server-Sent Events all read the same feed while it is published. Per
method: HTTP requests, bytes on the wire (both ways, everything) and latency, each per event
delivered. ``python -m benchmarks.transports --events 1000 --interval 0.005``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks.designs import COURSE
from course_server.lab import compare


def per_event(rows: list[compare.Row]) -> str:
    """Requests, bytes and latency per delivered event; bytes also as a multiple of plain WS."""
    ws = next((r for r in rows if r.method == "WebSocket, no deflate"), None)
    header = (
        f"{'method':<22}{'requests/event':>15}{'bytes/event':>12}{'× plain WS':>11}"
        f"{'median ms':>11}{'p95 ms':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        requests = r.requests / max(r.delivered, 1)
        times = f"{r.bytes_per_event / ws.bytes_per_event:.1f}" if ws else "-"
        lines.append(
            f"{r.method:<22}{requests:>15.3f}{r.bytes_per_event:>12.0f}{times:>11}"
            f"{r.latency_median_ms:>11.1f}{r.latency_p95_ms:>8.1f}"
        )
    return "\n".join(lines)


async def run(
    events: int, interval: float, poll_intervals: tuple[float, ...] = (0.05, 0.25, 1.0)
) -> list[compare.Row]:
    """Lesson 01's experiment against a course server in a process of its own."""
    server = await asyncio.to_thread(COURSE.start)
    try:
        return await compare.run(
            server.http_url, events=events, interval=interval, poll_intervals=poll_intervals
        )
    finally:
        await asyncio.to_thread(server.stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.transports", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between events")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.events, args.interval))
    print(compare.as_table(rows))
    print()
    print(per_event(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
