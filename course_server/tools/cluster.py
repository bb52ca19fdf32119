"""Run a local cluster: one Redis, N ``course_server`` replicas, and nginx in front of them.

``python -m course_server.tools.cluster --replicas 2`` starts what ``deploy/compose.yaml``
describes, without Docker: a throwaway ``redis-server`` (``redis_server``), N processes
``python -m course_server --port 0 --redis-url …`` (``processes``, the one launcher) and Debian's
nginx with the repository's ``deploy/nginx.conf``. It prints the public URL and stops everything
on Ctrl+C. Tests use ``Cluster`` as a fixture (``tests/cluster_fixtures.py``), lesson 07 from a
notebook.

One nginx config: ``render()`` takes ``deploy/nginx.conf`` as it is and rewrites only what
compose's network decides, the upstream's ``server app:8000;`` (here one line per replica on
127.0.0.1) and ``listen 80;`` (a free port on 127.0.0.1). It also adds one *view* per replica:
a copy of the same ``server`` block on a port of its own whose upstream prefers that replica and
keeps the others as ``backup``. A client that must be on replica 0 (to be cut off by killing it)
connects through view 0, and when replica 0 is gone, nginx passes its reconnection on to a
survivor, as a sticky session does.
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from course_server.tools import processes
from course_server.tools.processes import ServerProcess
from course_server.tools.redis_server import RedisServer, free_port
from course_server.urls import ServerURLs

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
"""The repository's nginx config: compose mounts it, the cluster renders it."""

_UPSTREAM_SERVER = re.compile(r"^(\s*)server app:8000;\s*$", re.MULTILINE)
_LISTEN = re.compile(r"^(\s*)listen 80;\s*$", re.MULTILINE)
_PROXY_PASS = re.compile(r"proxy_pass http://course_app;")
_running: set[Cluster] = set()


def find_nginx() -> str | None:
    """``COURSE_NGINX``, else an ``nginx`` on PATH, else Debian's ``/usr/sbin/nginx``."""
    for candidate in (os.environ.get("COURSE_NGINX"), shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _one(pattern: re.Pattern[str], text: str) -> re.Match[str]:
    matches = list(pattern.finditer(text))
    if len(matches) != 1:
        raise ValueError(f"nginx.conf: expected one {pattern.pattern!r}, found {len(matches)}")
    return matches[0]


def _server_block(text: str) -> str:
    """The top-level ``server { … }`` block, braces matched, comments skipped."""
    start = _one(re.compile(r"^server \{", re.MULTILINE), text).start()
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "#":
            i = text.find("\n", i)
            if i == -1:
                break
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        i += 1
    raise ValueError("nginx.conf: the server block does not end")


def render(config: str, *, listen: int, replicas: Sequence[int], views: Sequence[int] = ()) -> str:
    """``config`` (``deploy/nginx.conf``) for replicas on 127.0.0.1 ``replicas`` ports.

    The public server listens on ``listen``; ``views[i]`` is the port of a copy of it that
    prefers replica ``i`` (the others are its backups). Everything else is left as written.
    """
    if views and len(views) != len(replicas):
        raise ValueError("one view per replica, or none")
    indent = _one(_UPSTREAM_SERVER, config).group(1)
    servers = "".join(f"{indent}server 127.0.0.1:{port};\n" for port in replicas)
    text = _UPSTREAM_SERVER.sub(lambda _: servers.rstrip("\n"), config)
    block = _server_block(text)
    text = text.replace(block, _LISTEN.sub(rf"\g<1>listen 127.0.0.1:{listen};", block))
    for i, port in enumerate(views):
        members = [
            f"server 127.0.0.1:{p}{'' if j == i else ' backup'};" for j, p in enumerate(replicas)
        ]
        text += f"\n# View {i}: replica {i} first, the others when it is down.\n"
        text += f"upstream course_app_{i} {{\n    " + "\n    ".join(members) + "\n}\n"
        view = _LISTEN.sub(rf"\g<1>listen 127.0.0.1:{port};", block)
        text += _PROXY_PASS.sub(f"proxy_pass http://course_app_{i};", view) + "\n"
    return text


def main_config(site: Path, workdir: Path) -> str:
    """The top-level config around the rendered ``site``: temp paths in ``workdir``, no logs."""
    temp_paths = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "worker_processes 1;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp_paths}"
        f"    include {site};\n"
        "}\n"
    )


class View(ServerURLs):
    """A base URL through nginx: the public one, or a view that prefers one replica."""

    def __init__(self, http_url: str) -> None:
        self.http_url = http_url

    def __repr__(self) -> str:
        return f"<View {self.http_url}>"


class Nginx:
    """nginx with ``config`` rendered for replicas on 127.0.0.1 (``render``), until ``stop()``.

    It runs in a temporary folder of its own (config, temp paths, error log) and in the
    foreground, so ``stop()`` ends it whatever it was doing.
    """

    def __init__(
        self,
        binary: str,
        *,
        listen: int,
        replicas: Sequence[int],
        views: Sequence[int] = (),
        config: Path = CONFIG,
    ) -> None:
        self.binary, self.config = binary, config
        self.listen, self.replicas, self.view_ports = listen, list(replicas), list(views)
        self.http_url = f"http://127.0.0.1:{listen}"
        self.views = [View(f"http://127.0.0.1:{port}") for port in views]
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def start(self, timeout: float = 10.0) -> Self:
        """Start nginx; return once ``/healthz`` answers through it and through every view."""
        self._workdir = tempfile.TemporaryDirectory(prefix="course-nginx-")
        workdir = Path(self._workdir.name)
        # Run as root, nginx's workers run as nobody: they must reach the temp paths (nginx makes
        # them theirs) to buffer a request body of more than 16 KiB.
        workdir.chmod(0o755)
        site = workdir / "site.conf"
        config = self.config.read_text(encoding="utf-8")
        site.write_text(
            render(config, listen=self.listen, replicas=self.replicas, views=self.view_ports),
            encoding="utf-8",
        )
        conf = workdir / "nginx.conf"
        conf.write_text(main_config(site, workdir), encoding="utf-8")
        error_log = self._error_log()
        command = [
            self.binary, "-p", str(workdir), "-c", str(conf), "-e", str(error_log),
            "-g", f"daemon off; pid {workdir / 'nginx.pid'}; error_log {error_log} warn;",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        try:
            for base in [self.http_url, *(view.http_url for view in self.views)]:
                processes.wait_until_answers(f"{base}/healthz", deadline, self._exited)
        except BaseException:
            self.stop()
            raise
        return self

    def _error_log(self) -> Path:
        assert self._workdir is not None
        return Path(self._workdir.name) / "error.log"

    def _exited(self) -> str | None:
        if self._process is not None and self._process.poll() is None:
            return None
        return f"nginx exited: {self.log().strip()}"

    @property
    def pid(self) -> int | None:
        """nginx's master process, while it runs."""
        return self._process.pid if self._process is not None else None

    def log(self) -> str:
        """What nginx wrote to its error log so far (warnings and worse)."""
        if self._workdir is None:
            return ""
        path = self._error_log()
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (nginx's fast shutdown), SIGKILL after ``timeout``; safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            processes.end(process, timeout=timeout)  # SIGTERM: nginx's fast shutdown
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Cluster(ServerURLs):
    """Redis, ``replicas`` course servers and nginx; ``url()``/``ws()`` go through nginx.

    ``views[i]`` reaches replica ``i`` through nginx (another replica once ``i`` is down);
    ``servers[i]`` is its process (``kill(i)`` is a crash). Without ``redis_url`` the cluster
    starts a Redis of its own. ``env`` adds ``COURSE_*`` settings for every replica.
    """

    def __init__(
        self,
        replicas: int = 2,
        *,
        redis_url: str | None = None,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        nginx: str | None = None,
        config: Path = CONFIG,
        timeout: float = 30.0,
    ) -> None:
        if replicas < 1:
            raise ValueError("a cluster needs at least one replica")
        self.count, self.timeout, self.config = replicas, timeout, config
        self.nginx = nginx or find_nginx()
        self.jwt_secret = os.environ.get("COURSE_JWT_SECRET") or secrets.token_urlsafe(32)
        self._redis_url, self._env, self._port = redis_url, dict(env or {}), port
        self.redis: RedisServer | None = None
        self.servers: list[ServerProcess] = []
        self.views: list[View] = []
        self.http_url = ""
        self._nginx: Nginx | None = None

    @property
    def redis_url(self) -> str:
        return self._redis_url or (self.redis.url if self.redis else "")

    def start(self) -> Self:
        """Start Redis, the replicas, then nginx; return once ``/healthz`` answers through it."""
        if self.nginx is None:
            raise FileNotFoundError(
                "no nginx: `sudo apt-get install nginx-light` (or set COURSE_NGINX)"
            )
        _running.add(self)
        try:
            if not self._redis_url:
                self.redis = RedisServer().start()
            ports = [self._port or free_port()] + [free_port() for _ in range(self.count)]
            hosts = ",".join(f"{name}:{p}" for p in ports for name in ("127.0.0.1", "localhost"))
            self.servers = processes.spawn_many(
                self.count,
                redis_url=self.redis_url,
                # As compose does: trust X-Forwarded-For from nginx alone, answer its names.
                args=["--forwarded-allow-ips", "127.0.0.1", "--allowed-hosts", hosts],
                env={"COURSE_JWT_SECRET": self.jwt_secret, **self._env},
                timeout=self.timeout,
            )
            self._start_nginx(ports[0], ports[1:])
        except BaseException:
            self.stop()
            raise
        return self

    def _start_nginx(self, listen: int, views: list[int]) -> None:
        assert self.nginx is not None
        replicas = [int(s.http_url.rsplit(":", 1)[1]) for s in self.servers]
        self._nginx = Nginx(
            self.nginx, listen=listen, replicas=replicas, views=views, config=self.config
        )
        self._nginx.start(self.timeout)
        self.http_url = self._nginx.http_url
        self.views = self._nginx.views

    @property
    def nginx_pid(self) -> int | None:
        """nginx's master process, while it runs."""
        return self._nginx.pid if self._nginx is not None else None

    def kill(self, index: int) -> int:
        """SIGKILL replica ``index``: a crash, no goodbye; nginx sends its clients elsewhere."""
        return self.servers[index].kill()

    def nginx_log(self) -> str:
        """What nginx wrote to its error log so far (warnings and worse)."""
        return self._nginx.log() if self._nginx is not None else ""

    def stop(self, timeout: float = 10.0) -> None:
        """Stop nginx, the replicas (Ctrl+C each), then Redis; safe to call twice."""
        _running.discard(self)
        nginx, self._nginx = self._nginx, None
        if nginx is not None:
            nginx.stop(timeout)
        for server in self.servers:
            server.stop(timeout)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        alive = sum(s.running for s in self.servers)
        return f"<Cluster {alive}/{self.count} replicas behind {self.http_url or 'nothing yet'}>"


def stop_all() -> None:
    """Stop every cluster started here that is still running (also runs at interpreter exit)."""
    for cluster in list(_running):
        cluster.stop()


atexit.register(stop_all)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_server.tools.cluster",
        description="Redis, N course_server replicas and nginx (deploy/nginx.conf) on 127.0.0.1.",
    )
    parser.add_argument("--replicas", type=int, default=2, help="course_server processes (2)")
    parser.add_argument("--port", type=int, default=0, help="nginx's public port (0: a free one)")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a new one")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stopped = threading.Event()
    # SIGTERM ends it as Ctrl+C does; the children share our terminal's Ctrl+C anyway.
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        with Cluster(args.replicas, redis_url=args.redis_url, port=args.port) as cluster:
            print(f"cluster of {args.replicas} replicas serving on {cluster.http_url}", flush=True)
            for i, (view, server) in enumerate(zip(cluster.views, cluster.servers, strict=True)):
                print(f"  replica {i}: pid {server.pid}, via nginx at {view.http_url}", flush=True)
            print(f"  nginx: pid {cluster.nginx_pid}; Ctrl+C stops them all.", flush=True)
            while not stopped.wait(1.0):  # a timeout, so that Ctrl+C interrupts the wait
                pass
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
