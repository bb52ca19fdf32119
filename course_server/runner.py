"""Run the course server in a background thread: for notebooks, tests and scripts alike.

``start()`` binds the listening socket itself, in the caller's thread, so "address already in
use" is an immediate ``OSError`` rather than a log line in another thread. uvicorn then serves on
that socket from a thread with its own event loop, which is why this works inside Jupyter, whose
loop is already running in the main thread. ``start()`` returns once the server has finished
starting up (its lifespan ran, it accepts connections), or raises within ``timeout``.

Servers are kept by name: starting a name that is running stops the old server first, so running
a notebook's start cell twice never fails.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import socket
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, Self, TypeVar

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # uvicorn[standard] has it
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from course_server.app import create_app
from course_server.realtime.frames import FrameWriter
from course_server.realtime.inbox import Gate, Inbox
from course_server.realtime.peers import Peers
from course_server.realtime.sessions import SessionRegistry
from course_server.settings import Settings
from course_server.urls import ServerURLs, public_host

T = TypeVar("T")
P = TypeVar("P", bound="HeaderDeadline")

_running: dict[str, RunningServer] = {}
_running_lock = threading.Lock()


class HeaderDeadline:
    """Cuts a connection whose request line and headers are not in within ``header_timeout``.

    uvicorn has no such timeout: a client that sends one header byte every few seconds (a
    slowloris) holds its connection, and the memory and file descriptor behind it, forever, and a
    few hundred of them take every descriptor the process has. The timer starts when the
    connection is made and again when a new request begins on a kept-alive one (between
    requests, uvicorn's own keep-alive timeout applies), and stops once the headers are in.
    """

    header_timeout: float = 10.0  # COURSE_HEADER_TIMEOUT; ``make_config`` sets it per server
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        # abort, not close: a slow client may not be reading either, and close waits for it.
        if not self.transport.is_closing():
            self.transport.abort()


class HttpToolsDeadline(HeaderDeadline, HttpToolsProtocol):
    """uvicorn's HTTP protocol of choice (httptools, what "auto" picks), with the deadline."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)


class H11Deadline(HeaderDeadline, H11Protocol):
    """uvicorn's pure-Python HTTP protocol (h11), with the deadline: ``start(http=H11Deadline)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # these bytes begin a request (h11 has no callback)
            self._start_header_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a whole request line and headers were read
            self._stop_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)


class SansIOProtocol(HeaderDeadline, FrameWriter, WebSocketsSansIOProtocol):
    """uvicorn's fastest WebSocket implementation, minus a false alarm on denial responses.

    ``FrameWriter`` lets a broadcast write one pre-framed message to each socket (lesson 10).

    Without this, every refused handshake (a 403 for a foreign Origin, a 401 for a bad token)
    also logs "ASGI callable returned without completing handshake." at ERROR level
    (uvicorn PR #3138 fixes it upstream; the wsproto implementation already behaves).

    The HTTP protocol hands a WebSocket over with its headers complete; the header deadline then
    bounds the handshake itself: an upgrade that neither opens nor is refused in time is cut.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The same FIFO and flag in a fraction of the memory (see ``inbox``): ~3.7 KiB per held
        # connection. uvicorn types them as asyncio.Queue and asyncio.Event.
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate()  # type: ignore[assignment]
        self.writable.set()  # as uvicorn's own: writable until the transport says otherwise

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_header_timer()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True
        if self.handshake_complete:
            self._stop_header_timer()
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # uvicorn keeps the parsed request (every header, as a ``Headers``) and its 101
            # response for the connection's whole life, but reads neither after the handshake:
            # the app has its own copy, ``scope["headers"]``. The request is emptied as well as
            # dropped: the ``websockets`` parser still holds it (a local of its generator).
            # About 4 KiB per connection (lesson 09).
            self.request.headers.clear()
            del self.request, self.response

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)


def with_header_timeout(protocol: type[P], seconds: float) -> type[P]:
    """A subclass of ``protocol`` (a ``HeaderDeadline``) whose deadline is ``seconds``."""
    return type(protocol.__name__, (protocol,), {"header_timeout": seconds})


@dataclasses.dataclass(frozen=True)
class Goodbye:
    """The registries a graceful shutdown closes before uvicorn's own, in this order (lesson 09).

    ``peers`` first, each close queued behind the frames already queued for it, so nothing is
    overtaken; then ``sessions``, whatever is still open (event streams too). An app with
    neither (a learner's own ``FastAPI()``) gets uvicorn's shutdown alone.
    """

    peers: Peers | None = None
    sessions: SessionRegistry | None = None

    @classmethod
    def of(cls, app: FastAPI) -> Goodbye:
        """The registries ``create_app`` made for ``app``; none for an app it did not make."""
        # ``start()`` serves any app, a learner's too: ask it once, here, what it has.
        return cls(getattr(app.state, "peers", None), getattr(app.state, "sessions", None))

    async def close_all(self) -> None:
        """Say goodbye: peers within 5 s (1 s without progress), then sessions within 1 s."""
        if self.peers is not None:
            await self.peers.close_all(idle=1.0, limit=5.0)
        if self.sessions is not None:
            await self.sessions.close_all(wait=1.0)


class CourseServer(uvicorn.Server):
    """uvicorn's server, with a readiness event and ``goodbye`` (1001) for open WebSockets."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, goodbye: Goodbye) -> None:
        super().__init__(config)
        self.app = app
        self.goodbye = goodbye
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            # Set on failure too: whoever waits reads ``started`` to tell which.
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections while we say goodbye to the open ones
        await self.goodbye.close_all()
        await self._drop_stuck_websockets()
        await super().shutdown(sockets=sockets)

    async def _drop_stuck_websockets(self, idle: float = 0.25, limit: float = 2.0) -> None:
        """Abort WebSocket connections whose peer stopped reading.

        uvicorn only ever closes a transport gracefully, which waits for its buffered bytes to
        be written. A peer that reads nothing never takes them, so without this, one stalled
        client holds shutdown for the whole graceful timeout. A healthy peer may still be
        reading the last frames flushed to it (a close counts as sent once it is buffered): a
        buffer that shrinks within ``idle`` seconds gets up to ``limit`` seconds to empty.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        waiting = self._buffered()
        while waiting:
            await asyncio.sleep(idle)  # the interval progress is measured over
            now = self._buffered()
            for connection, size in now.items():
                if size >= waiting.get(connection, size + 1) or loop.time() >= deadline:
                    connection.transport.abort()
            waiting = self._buffered()  # an aborted transport has dropped its buffer

    def _buffered(self) -> dict[WebSocketsSansIOProtocol, int]:
        """WebSocket connections with bytes their peer has not taken yet, and how many."""
        buffered = {}
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if (
                isinstance(connection, WebSocketsSansIOProtocol)
                and transport is not None
                and transport.get_write_buffer_size() > 0
            ):
                buffered[connection] = transport.get_write_buffer_size()
        return buffered


def make_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration the course runs with, from the app's settings."""
    options: dict[str, Any] = {
        "log_level": settings.log_level,
        # Both cut clients that are too slow to send their headers (COURSE_HEADER_TIMEOUT).
        "http": with_header_timeout(HttpToolsDeadline, settings.header_timeout),
        # The sans-I/O implementation is markedly faster at broadcast than the legacy one.
        "ws": with_header_timeout(SansIOProtocol, settings.header_timeout),
        "ws_max_size": settings.max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval or None,
        "ws_ping_timeout": settings.ws_ping_timeout,
        "ws_per_message_deflate": settings.ws_deflate,
        "timeout_graceful_shutdown": 5,
        "lifespan": "on",
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket; port 0 lets the OS pick a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # Nagle's algorithm and delayed ACKs add ~40 ms to every small HTTP response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    # Listen now, so a client that connects as soon as the URL is printed is queued, not refused.
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(name: str, app: Any, settings: Settings, host: str, port: int) -> None:
    """Serve ``app`` in this process until Ctrl+C, after printing ``NAME serving on URL``.

    With ``port`` 0 the OS picks one; ``tools.processes`` reads that line to learn it. For the
    benchmarks' servers and lesson 07's baseline; ``python -m course_server`` adds its shutdown.
    """
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"{name} serving on http://{bound_host}:{bound_port}", flush=True)
    server = uvicorn.Server(make_config(app, settings))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(sockets=[sock]))


class RunningServer(ServerURLs):
    """A course server serving from a background thread. Use ``start()`` to make one."""

    def __init__(self, name: str, server: CourseServer, sock: socket.socket) -> None:
        self.name = name
        self.app: FastAPI = server.app
        self.host: str
        self.port: int
        self.host, self.port = sock.getsockname()[:2]
        # Base URL for HTTP, e.g. ``http://127.0.0.1:PORT`` (no trailing slash): fixed once bound.
        self.http_url = f"http://{_bracketed(self.host)}:{self.port}"
        self._server = server
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._serve, name=f"course-server:{name}", daemon=True
        )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # surfaced to start()/stop() in the caller's thread
            self._error = exc
        finally:
            self._server.ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._sock.close()

    def _start(self, timeout: float) -> None:
        self._thread.start()
        if not self._server.ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"server {self.name!r} did not start within {timeout} s")
        if not self._server.started:
            self._thread.join(timeout)
            raise RuntimeError(
                f"server {self.name!r} failed to start (its lifespan start-up raised?)"
            ) from self._error

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        """Run a coroutine on the server's own event loop and return its result.

        The server's objects (rooms, queues) belong to that loop; touch them only from there.
        """
        if self._loop is None or not self.running:
            coro.close()
            raise RuntimeError(f"server {self.name!r} is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Close open WebSockets with 1001, finish in-flight requests, end the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        with _running_lock:
            if _running.get(self.name) is self:
                del _running[self.name]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RunningServer {self.name!r} {state} at {self.http_url}>"


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def with_public_host(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """``settings`` that also accept the host of an absolute ``COURSE_PUBLIC_URL``.

    Behind jupyter-server-proxy, the browser's requests arrive with the hub's ``Host`` and
    ``Origin``: that one configured name (at its port, if the URL gives one) becomes one of the
    server's, so its pages may open WebSockets. Nothing else is opened (no ``*``, no subdomains).
    """
    host = public_host(environ)
    if host is None or host in settings.allowed_hosts or "*" in settings.allowed_hosts:
        return settings
    return dataclasses.replace(settings, allowed_hosts=(*settings.allowed_hosts, host))


def start(
    app: FastAPI | None = None,
    *,
    name: str = "course",
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 10,
    **uvicorn_options: Any,
) -> RunningServer:
    """Serve ``app`` (default: ``create_app(settings)``) in a background thread.

    Returns once the server accepts connections. A server already running under ``name`` is
    stopped first. Extra keyword arguments go to ``uvicorn.Config``. The default app mounts the
    teaching routes (``/naive/…``, for the lessons to break) unless ``settings`` turns them off.
    """
    stop(name)
    if app is None:
        # The environment (COURSE_*), as ``create_app(None)`` and ``python -m course_server``.
        settings = settings or Settings.from_env()
        if settings.teaching_routes is None:  # lessons 03 and 09 break the seed's endpoints
            settings = dataclasses.replace(settings, teaching_routes=True)
        app = create_app(with_public_host(settings))
    if hasattr(app.state, "settings"):
        settings = app.state.settings
    settings = settings or Settings.from_env()
    sock = bind_socket(host, port)
    server = CourseServer(make_config(app, settings, **uvicorn_options), app, Goodbye.of(app))
    running = RunningServer(name, server, sock)
    with _running_lock:
        _running[name] = running
    try:
        running._start(timeout)
    except BaseException:
        with _running_lock:
            _running.pop(name, None)
        raise
    return running


def stop(name: str) -> None:
    """Stop the server running under ``name``, if there is one."""
    with _running_lock:
        running = _running.get(name)
    if running is not None:
        running.stop()


def stop_all() -> None:
    """Stop every background server (also runs at interpreter exit)."""
    with _running_lock:
        servers = list(_running.values())
    for running in servers:
        running.stop()


def running_servers() -> dict[str, RunningServer]:
    with _running_lock:
        return dict(_running)


atexit.register(stop_all)
