"""The seed's naive design alone: an app that mounts only the seed's routes (``/naive/…``).

Served exactly as ``python -m course_server`` serves the course app (same uvicorn settings, same
WebSocket implementation, same event loop), so the benchmark compares designs, not servers.

``python -m benchmarks.naive_server --port 0`` prints its URL, then serves until Ctrl+C (SIGINT).
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from course_server import seed
from course_server.runner import serve
from course_server.seed import naive
from course_server.settings import Settings


def create_naive_app() -> FastAPI:
    app = FastAPI(title="The seed's naive ConnectionManager")
    app.state.naive = naive.NaiveManagers()
    app.include_router(seed.router)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve("naive_server", create_naive_app(), Settings.from_env(), args.host, args.port)


if __name__ == "__main__":
    main()
