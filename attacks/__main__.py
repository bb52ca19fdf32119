"""``python -m attacks [--short] [--redis]``: attack real servers; print attack → expected → got.

Exits 1 if any attack got through. The full run takes about a minute; ``--short`` (what CI runs)
about half that. Every target is a ``python -m course_server`` process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator

import httpx

from attacks.probes import PROBES, Row, Target, login_flood, secrets_in_logs, slowloris
from course_server.tools.processes import ServerProcess, spawn
from course_server.tools.redis_server import RedisServer


@contextlib.contextmanager
def serving(**options: object) -> Iterator[ServerProcess]:
    server = spawn(**options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


async def readiness(a: ServerProcess, redis: RedisServer) -> list[Row]:
    """``/readyz`` says 503 while Redis is down, 200 once it is back; ``/healthz`` stays 200."""
    async with httpx.AsyncClient(timeout=5) as http:
        redis.stop()
        down = (await http.get(a.url("/readyz"))).status_code
        alive = (await http.get(a.url("/healthz"))).status_code
        redis.start()
        up = 0
        for _ in range(100):  # the server reconnects on its own: poll, with a bound
            up = (await http.get(a.url("/readyz"))).status_code
            if up == 200:
                break
            await asyncio.sleep(0.1)
    return [
        Row("/readyz while Redis is down", "503", str(down), down == 503),
        Row("/healthz while Redis is down", "200", str(alive), alive == 200),
        Row("/readyz once Redis is back", "200", str(up), up == 200),
    ]


def run(short: bool, redis: bool) -> list[Row]:
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        redis_server = stack.enter_context(RedisServer()) if redis else None
        url = redis_server.url if redis_server else None
        a = stack.enter_context(serving(redis_url=url))
        b = stack.enter_context(serving(redis_url=url)) if redis else a
        target = Target(a, b, short, " (across processes)" if redis else "")
        for probe in PROBES:
            rows += asyncio.run(probe(target))
        if redis_server is not None:
            rows += asyncio.run(readiness(a, redis_server))
    with serving() as server:
        rows += asyncio.run(login_flood(server))
    header_timeout = 2 if short else 10
    with serving(env={"COURSE_HEADER_TIMEOUT": str(header_timeout)}) as server:
        rows += asyncio.run(slowloris(server, 20 if short else 100, header_timeout))
    with serving(args=["--log-level", "debug"]) as server:
        _, read_rows = asyncio.run(secrets_in_logs(server))
    rows += read_rows()  # the log is whole once the process has stopped
    return rows


def table(rows: list[Row]) -> str:
    header = Row("attack", "expected", "got", True)
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("attack", "expected")]
    lines = []
    for row in [header, *rows]:
        mark = "  " if row is header else ("ok" if row.ok else "!!")
        lines.append(
            f"{mark} {row.attack.ljust(widths[0])}  {row.expected.ljust(widths[1])}  {row.got}"
        )
    failed = sum(not r.ok for r in rows)
    lines.append(f"\n{len(rows) - failed} held, {failed} got through")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attacks", description=__doc__.split("\n")[0])
    parser.add_argument("--short", action="store_true", help="smaller floods (what CI runs)")
    parser.add_argument("--redis", action="store_true", help="two processes and a real Redis")
    args = parser.parse_args(argv)
    rows = run(args.short, args.redis)
    print(table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
