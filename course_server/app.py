"""The app factory: ``create_app(settings)`` builds the course app with every lesson mounted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from course_server import seed
from course_server.lessons import (
    basics,
    broadcast,
    chat,
    closing,
    events,
    feed,
    lobby,
    notifications,
    pages,
    params,
    readiness,
)
from course_server.realtime import ratelimit
from course_server.realtime.peers import Peers
from course_server.realtime.sessions import SessionRegistry, TrackSessions
from course_server.scaling.backend import create_backend
from course_server.security import dependencies, redaction, secure, tokens
from course_server.security.bodylimit import BodyLimit
from course_server.security.hosts import AllowedHosts, HostGuard
from course_server.security.origins import OriginGuard
from course_server.security.throttle import LoginThrottle
from course_server.seed import naive
from course_server.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up and shut-down for the app's long-lived parts (the backend and its tasks)."""
    async with app.state.backend:  # lesson 07: connects to Redis, if set
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the course app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = FastAPI(title="Real-time Python with FastAPI: course server", lifespan=lifespan)
    app.state.settings = settings
    app.state.sessions = SessionRegistry()
    app.state.hosts = AllowedHosts(settings.allowed_hosts)  # a bad entry fails here, not later
    app.state.naive = naive.NaiveManagers()
    app.state.users = tokens.Users(settings.demo_users)
    app.state.feed = feed.Feed()
    app.state.sse_streams = events.StreamCounter()  # lesson 08: SSE generators alive
    # The shared state, in-process or shared through Redis (lesson 07): chosen here, once.
    backend = app.state.backend = create_backend(settings)
    app.state.chat_rooms = backend.rooms
    app.state.lobby = backend.lobby
    app.state.broadcast = backend.broadcast
    app.state.notifications = backend.notifications
    app.state.notifier = backend.notifier
    # Lesson 06: logins throttled, signed-out tokens refused (both shared through Redis, if set).
    app.state.login_throttle = LoginThrottle(backend.login_failures, settings.login_concurrency)
    app.state.revocations = backend.revocations
    # Lesson 09: queued frames are flushed before the goodbye; a chat user's connections share a
    # bucket of twice one connection's rate, so more rooms or tabs do not multiply a flood.
    # A peer cut off as a slow consumer gets its 4008 once its buffers drain; how long we wait
    # for that is how long we wait for any sign of life from a peer: the ping timeout.
    app.state.peers = Peers(
        queue_size=settings.send_queue_size, close_timeout=settings.ws_ping_timeout
    )
    app.state.user_buckets = ratelimit.UserBuckets(2 * settings.rate_limit)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness probe for humans, load balancers and the test suite."""
        return {"status": "ok"}

    app.include_router(readiness.router)
    app.include_router(basics.router)
    app.include_router(broadcast.router)
    if settings.teaching_routes:  # the seed's broken endpoints, under /naive, for lessons to break
        app.include_router(seed.router)
    app.include_router(tokens.router)
    app.include_router(secure.router)
    app.include_router(dependencies.router)
    app.include_router(feed.router)
    app.include_router(closing.router)
    app.include_router(params.router)  # lesson 02: Depends, WebSocketException
    app.include_router(chat.router)
    app.include_router(lobby.router)
    app.include_router(events.router)
    app.include_router(notifications.router)
    app.include_router(pages.router)

    redaction.install()  # tokens and cookies stay out of every log line

    # The last middleware added runs first: refuse foreign origins before tracking a session.
    app.add_middleware(TrackSessions, registry=app.state.sessions)
    app.add_middleware(
        OriginGuard, allowed_origins=settings.allowed_origins, allowed_hosts=settings.allowed_hosts
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_message_bytes)  # 413 before reading
    app.add_middleware(HostGuard, allowed_hosts=settings.allowed_hosts)  # first: DNS rebinding
    return app
