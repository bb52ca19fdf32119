"""Shared fixtures: settings for fast tests, a real server on a free port, a TestClient.

Every wait in the suite is bounded by ``wait_timeout(seconds)``; set
``COURSE_TEST_TIMEOUT_FACTOR`` (e.g. 3) on a slow machine to scale them all at once.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
from fastapi.testclient import TestClient

from course_server import RunningServer, Settings, create_app, start
from course_server.lab import waiting

# tests/browser.py: headless Chromium fixtures (browser, browser_context) for the browser tests;
# tests/cluster_fixtures.py: Redis, two course_server processes and nginx in front (cluster);
# tests/redis_fixtures.py: a throwaway Redis, and two servers sharing it.
pytest_plugins = ["browser", "cluster_fixtures", "exercise_reports", "redis_fixtures"]

# The repository's root: the tests sit in folders that mirror the package, at any depth.
ROOT = Path(__file__).resolve().parent.parent

_names = itertools.count()


def load_script(name: str) -> ModuleType:
    """``scripts/NAME.py`` as module ``NAME``: the scripts are files, not a package."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def wait_timeout(seconds: float = 5.0) -> float:
    """A deadline for one wait, scaled for slow machines."""
    return seconds * float(os.environ.get("COURSE_TEST_TIMEOUT_FACTOR", "1"))


def missing_tool(reason: str) -> NoReturn:
    """Skip a test whose tool (Chromium, nginx) is not installed; fail it under CI.

    CI (``CI=true``) installs every tool, so there a missing one is a broken build, not a skip.
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, interval: float = 0.01
) -> None:
    """Poll ``check`` until it is true, failing after ``wait_timeout(timeout)`` seconds.

    For state with no event to wait on (a counter inside the server); never a fixed sleep.
    """
    await waiting.eventually(check, wait_timeout(timeout), interval)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, like uvicorn."""
    return "asyncio"


@pytest.fixture
def settings() -> Settings:
    """Settings with a fixed secret and short timeouts, so tests stay fast and deterministic."""
    return Settings(jwt_secret="test-secret-not-for-production-0123456789", auth_timeout=0.5)


@pytest.fixture
def server(settings: Settings) -> Iterator[RunningServer]:
    """The full course app served by real uvicorn on 127.0.0.1, a free port, in a thread."""
    running = start(name=f"test-{next(_names)}", settings=settings)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """Starlette's in-process TestClient over the full app (lifespan included)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def unlimited_server(settings: Settings) -> Iterator[RunningServer]:
    """``server`` with the rate limit off: for tests that send faster than a person types.

    Every channel is rate-limited, and guests on one address share one budget; a test about
    something else (fan-out, freeing rooms) would otherwise be measuring the limiter.
    """
    running = start(name=f"test-{next(_names)}", settings=replace(settings, rate_limit=0))
    try:
        yield running
    finally:
        running.stop()
