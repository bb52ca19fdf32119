"""``python -m loadtest``: hold many chat connections on one server process and measure them.

The full run of lesson 09 (about 70 s):

    .venv/bin/python -m loadtest --connections 1000 --seconds 60

Exits 1 if any connection was dropped while held.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from loadtest.hold import hold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000, help="default 1000")
    parser.add_argument("--seconds", type=float, default=60, help="how long to hold (default 60)")
    parser.add_argument("--ping-interval", type=float, default=5, help="server pings (default 5)")
    parser.add_argument("--ping-timeout", type=float, default=5, help="pong deadline (default 5)")
    parser.add_argument("--room-size", type=int, default=100, help="members per room (100)")
    parser.add_argument(
        "--deflate", action="store_true", help="permessage-deflate on (COURSE_WS_DEFLATE=true)"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(
        hold(
            args.connections,
            args.seconds,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            room_size=args.room_size,
            compress=args.deflate,
        )
    )
    print(report)
    ok = report.still_open == report.in_rooms == report.connections
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
