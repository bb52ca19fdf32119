"""``GET /readyz``: may this process take traffic now? 503 while its Redis is unreachable.

``/healthz`` is liveness: the process answers, so do not restart it. Readiness is the other
question a load balancer asks: can it serve? With ``COURSE_REDIS_URL`` set, every chat, lobby and
notification goes through Redis, so a process cut off from Redis answers chat joins with 1013 and
posts with 503: it is alive, but a balancer should send the traffic to a process that can serve
it. The app's backend answers (``Backend.problem``): the in-process one is always ready; the
Redis one asks Redis itself (a ``PING`` on the process's own client, bounded by
``link.PROBE_TIMEOUT``) and whether the pub/sub connection that delivers every event is up.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["operations"])


@router.get(
    "/readyz",
    responses={503: {"description": "A configured Redis is unreachable: send traffic elsewhere"}},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness probe: 200 when this process can serve, 503 (with the reason) while it cannot."""
    problem = await request.app.state.backend.problem()
    if problem is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
