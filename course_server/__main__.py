"""``python -m course_server``: serve the full course app in the foreground.

Prints the URL it serves on (useful with ``--port 0``), then serves until Ctrl+C, when open
WebSockets are closed with 1001.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from course_server.app import create_app
from course_server.runner import CourseServer, Goodbye, bind_socket, make_config
from course_server.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_server",
        description="Serve the Real-time Python with FastAPI course app.",
        epilog="Every COURSE_* environment variable is read too (see the README); flags win.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument("--redis-url", default=None, help="share rooms through this Redis")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    parser.add_argument(
        "--allowed-hosts",
        default=None,
        help="Host names to answer besides its own, comma-separated ('*': a proxy checks them)",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default=None,
        help="proxy addresses whose X-Forwarded-For/-Proto to trust (uvicorn's; default 127.0.0.1)",
    )
    parser.add_argument(
        "--teaching-routes",
        action="store_true",
        default=None,
        help="mount the seed's deliberately broken /naive/... endpoints (off by default)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environ = dict(os.environ)
    if args.allowed_hosts is not None:  # read as the variable is, so both spell it the same
        environ["COURSE_ALLOWED_HOSTS"] = args.allowed_hosts
    settings = Settings.from_env(
        environ,
        redis_url=args.redis_url,
        log_level=args.log_level,
        teaching_routes=args.teaching_routes,
    )
    if not os.environ.get("COURSE_JWT_SECRET"):
        print(
            "warning: COURSE_JWT_SECRET is not set; tokens are signed with a random key "
            "that lasts only as long as this process.",
            file=sys.stderr,
        )
    app = create_app(settings)
    sock = bind_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"course_server serving on http://{shown}:{port} (Ctrl+C to stop)", flush=True)
    proxies = {"forwarded_allow_ips": args.forwarded_allow_ips} if args.forwarded_allow_ips else {}
    server = CourseServer(make_config(app, settings, **proxies), app, Goodbye.of(app))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl+C it handled; the shutdown already ran, so exit quietly.
        pass
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
