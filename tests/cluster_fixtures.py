"""Fixtures for the tests through nginx: a local cluster of course servers behind the real nginx.

Registered in ``conftest.py`` (``pytest_plugins``). ``cluster`` is a fresh ``tools.cluster``
cluster per test (tests kill replicas), two replicas sharing the module's Redis. Without nginx
these tests skip, except under CI (``CI=true``), where a missing nginx is a broken build and
fails, as ``browser.py`` decides for Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import missing_tool, wait_timeout

from course_server.tools.cluster import Cluster, find_nginx
from course_server.tools.redis_server import RedisServer


def nginx_path() -> str:
    """The nginx binary to run; skips the test without one (fails it under CI)."""
    path = find_nginx()
    if path:
        return path
    missing_tool("no nginx: install Debian's `nginx-light` (or set COURSE_NGINX) for cluster tests")


@pytest.fixture
def cluster(redis_server: RedisServer) -> Iterator[Cluster]:
    """Two ``course_server`` replicas on the module's Redis, behind nginx (deploy/nginx.conf)."""
    with Cluster(
        2, redis_url=redis_server.url, nginx=nginx_path(), timeout=wait_timeout(30)
    ) as running:
        yield running
