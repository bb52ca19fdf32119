"""``course_server.seed``: one router serves the seed's broken endpoints, all under ``/naive``."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from course_server import Settings, create_app, seed
from course_server.seed import heartbeat, naive


def paths(routes: Sequence[BaseRoute]) -> set[str]:
    """Every route's path as served, the prefixes of included routers applied."""
    return {context.path for context in iter_route_contexts(routes) if context.path is not None}


def app_with(teaching_routes: bool) -> FastAPI:
    return create_app(Settings(jwt_secret="t", teaching_routes=teaching_routes))


def test_the_seed_router_serves_every_seed_endpoint_under_naive() -> None:
    seed_paths = paths(naive.router.routes) | paths(heartbeat.router.routes)
    assert paths(seed.router.routes) == {f"/naive{path}" for path in seed_paths}


def test_the_teaching_routes_add_the_seed_router_and_nothing_else() -> None:
    added = paths(app_with(teaching_routes=True).routes) - paths(app_with(False).routes)
    assert added == paths(seed.router.routes)


def test_nothing_but_the_seed_is_served_under_naive() -> None:
    assert not {path for path in paths(app_with(False).routes) if path.startswith("/naive")}
