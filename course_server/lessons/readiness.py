"""``GET /readyz``: may this process take traffic now? 503 while its Redis is unreachable.

``/healthz`` is liveness: the process answers, so do not restart it. Readiness is the other
question a load balancer asks: can it serve? With ``COURSE_REDIS_URL`` set, every chat, lobby and
notification goes through Redis, so a process cut off from Redis answers chat joins with 1013 and
posts with 503: it is alive, but a balancer should send the traffic to a process that can serve
it. Readiness asks Redis itself (a ``PING`` on the rooms' own client, bounded by
``PROBE_TIMEOUT``) and whether the pub/sub connection that delivers every event is up.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["operations"])

PROBE_TIMEOUT = 1.0  # seconds: a balancer's probe usually gives up after 1–5 s


async def redis_problem(rooms: object) -> str | None:
    """Why the rooms' Redis cannot serve now, or ``None`` (also when there is no Redis)."""
    client = getattr(rooms, "client", None)
    if client is None:
        return None  # the in-process broker: nothing outside this process to wait for
    from course_server.scaling.link import FAILURES  # only with Redis configured: it imports redis

    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await client.ping()
    except FAILURES as exc:
        return f"Redis is unreachable ({type(exc).__name__})"
    subscriber = getattr(rooms, "subscriber", None)
    if subscriber is not None and not subscriber.connected.is_set():
        return "the Redis pub/sub connection is reconnecting"
    return None


@router.get(
    "/readyz",
    responses={503: {"description": "A configured Redis is unreachable: send traffic elsewhere"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness probe: 200 when this process can serve, 503 (with the reason) while it cannot."""
    problem = await redis_problem(request.app.state.chat_rooms)
    if problem is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
