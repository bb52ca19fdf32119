"""The seed chapter's broken code, kept for lessons 03, 05, 09 and 10 to break live: do not copy.

Each lesson first runs the source chapter's code as written, shows the failure it teaches
against, then the course's fix. So the code is kept here, apart from the server's own, and
changed only where a notebook needs it (``print`` became a DEBUG log, one state per app, query
parameters clamped):

- ``naive``: ``ConnectionManager`` and ``UserConnectionManager`` (lessons 03 and 10);
- ``rooms``: ``SeedRoomManager`` (lesson 05);
- ``heartbeat``, ``ratelimit``, ``messages``: the liveness, rate-limit and validation patterns
  (lesson 09).

The fixes are the server's: ``realtime`` and ``lessons``. ``router`` serves the seed's endpoints,
all under ``/naive``; ``create_app`` mounts it only with ``settings.teaching_routes`` (the notebook
runner, or ``--teaching-routes``), never in a plain ``python -m course_server``.
"""

from fastapi import APIRouter

from course_server.seed import heartbeat, naive

PREFIX = "/naive"
"""Where the seed's endpoints live, beside the course's own (``/naive/ws/broadcast``…)."""

router = APIRouter(prefix=PREFIX)
router.include_router(naive.router)
router.include_router(heartbeat.router)
