"""The app factory: ``create_app(settings)`` builds the course app with every lesson mounted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from course_server import basics, closing
from course_server.origins import OriginGuard
from course_server.sessions import SessionRegistry, TrackSessions
from course_server.settings import Settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start-up and shut-down for the app's long-lived parts (brokers, background tasks)."""
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the course app; ``settings`` defaults to ``Settings.from_env()``."""
    settings = settings or Settings.from_env()
    app = FastAPI(title="Real-time Python with FastAPI: course server", lifespan=lifespan)
    app.state.settings = settings
    app.state.sessions = SessionRegistry()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness probe for humans, load balancers and the test suite."""
        return {"status": "ok"}

    app.include_router(basics.router)
    app.include_router(closing.router)

    # The last middleware added runs first: refuse foreign origins before tracking a session.
    app.add_middleware(TrackSessions, registry=app.state.sessions)
    app.add_middleware(OriginGuard, allowed_origins=settings.allowed_origins)
    return app
