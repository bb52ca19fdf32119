"""The naive version, for demonstrating failures — do not copy: the seed's liveness patterns.

Lesson 09 breaks these two endpoints, mounted under ``/naive`` beside lesson 03's:

- ``/naive/ws/heartbeat``: a task sends ``{"type": "heartbeat"}`` every ``interval`` seconds
  "to detect dead connections". It detects nothing. A send succeeds as soon as the frame is in
  the kernel's buffer, so a client that is frozen, or gone without a word, keeps "receiving"
  heartbeats for as long as the buffers take them (megabytes). When a send does fail, the bare
  ``except: break`` ends the heartbeat quietly and the endpoint goes on waiting in
  ``receive_text()`` for a client that will never speak: the connection stays registered.
- ``/naive/ws/robust``: ``asyncio.wait_for(receive_text(), timeout)``, and on timeout a JSON
  ``ping`` that nothing ever waits to see answered. ``except Exception`` then turns a client's
  mistake (a binary frame makes ``receive_text`` raise ``KeyError``) into close 1011 "Internal
  error", the code for a server fault.

What works instead is a ping that must be *answered*: uvicorn sends WebSocket pings every
``COURSE_WS_PING_INTERVAL`` seconds and drops a peer whose pong has not come within
``COURSE_WS_PING_TIMEOUT`` (see ``runner.make_config``); browsers answer those pings by
themselves. A page that wants to know the server still hears it sends the chat protocol's
``{"type": "ping"}`` and waits for ``{"type": "pong"}`` (see ``messages.Ping``).

Changes from the chapter: the intervals come from the query string (``?interval=``,
``?timeout=``; the chapter's 30 and 60 seconds are the defaults) so a lesson can wait
milliseconds instead of minutes, clamped to ``MIN_SECONDS``–``MAX_SECONDS`` (``timeout=1e-7``
made one connection spin a core), and ``print`` became a DEBUG log. Being broken on purpose,
these endpoints are mounted only when ``COURSE_TEACHING_ROUTES`` is on (the notebook runner).
"""
# The chapter's untyped signatures, kept as written (the lessons show them):
# mypy: disable-error-code="no-untyped-def, type-arg"

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import AfterValidator

from course_server.realtime.closecodes import CloseCode

logger = logging.getLogger(__name__)
router = APIRouter(tags=["lesson 09: the seed's liveness patterns"])

MIN_SECONDS = 0.01  # lesson 09 waits 10 ms between heartbeats; shorter only burns CPU
MAX_SECONDS = 3600.0


def clamp_seconds(value: float) -> float:
    """An interval from the query string, held between ``MIN_SECONDS`` and ``MAX_SECONDS``."""
    return min(max(value, MIN_SECONDS), MAX_SECONDS)


Seconds = Annotated[float, Query(allow_inf_nan=False), AfterValidator(clamp_seconds)]


async def heartbeat(websocket: WebSocket, interval: float = 30):
    """Send periodic heartbeat to detect dead connections"""
    while True:
        try:
            await asyncio.sleep(interval)  # Every 30 seconds
            await websocket.send_json({"type": "heartbeat"})
        except:  # noqa: E722 -- the chapter's bare except, kept: it is one of the bugs
            break


@router.websocket("/ws/heartbeat")
async def websocket_with_heartbeat(websocket: WebSocket, interval: Seconds = 30):
    await websocket.accept()

    # Start heartbeat task
    heartbeat_task = asyncio.create_task(heartbeat(websocket, interval))

    try:
        while True:
            data = await websocket.receive_text()  # noqa: F841 -- the chapter's "# Process..."
            # Process...
    finally:
        heartbeat_task.cancel()


@router.websocket("/ws/robust")
async def robust_websocket(websocket: WebSocket, timeout: Seconds = 60.0):
    await websocket.accept()

    try:
        while True:
            try:
                data = await asyncio.wait_for(
                    websocket.receive_text(),
                    timeout=timeout,  # Ping/pong timeout
                )
                await websocket.send_text(f"Received: {data}")

            except TimeoutError:
                # Send ping to check if alive
                await websocket.send_json({"type": "ping"})

    except WebSocketDisconnect:
        logger.debug("Clean disconnect")
    except Exception as e:
        logger.debug(f"Error: {e}")
        await websocket.close(code=CloseCode.INTERNAL_ERROR, reason="Internal error")
