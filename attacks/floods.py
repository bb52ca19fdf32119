"""Floods: one or many senders as fast as the server lets them; count what a listener receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server.urls import ServerURLs

MAX_FRAMES = 200_000  # per sender: the flood is bounded even if nothing limits it


async def _send_until(ws: ClientConnection, frame: str, deadline: float, pace: float) -> None:
    with contextlib.suppress(ConnectionClosed):
        for _ in range(MAX_FRAMES):
            if time.monotonic() > deadline:
                return
            await ws.send(frame)
            if pace:
                await asyncio.sleep(pace)  # just under a per-connection limit: the attack's pace


async def _count(ws: ClientConnection, counts: Callable[[str], bool], until: float) -> int:
    seen = 0
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        async with asyncio.timeout_at(asyncio.get_running_loop().time() + until):
            async for frame in ws:
                seen += counts(str(frame))
    return seen


async def flood(
    server: ServerURLs,
    sender_paths: list[str],
    listener_path: str,
    frame: str,
    counts: Callable[[str], bool],
    seconds: float,
    setup: Callable[[ClientConnection], Awaitable[None]] | None = None,
    pace: float = 0.0,
) -> int:
    """Messages the listener received while every sender flooded for ``seconds`` (+1 s drain).

    ``pace`` > 0: each sender waits that long between frames, staying under a per-connection
    limit, so that only a limit shared by all the senders can hold the total down.
    """
    async with connect(server.ws(listener_path), close_timeout=1) as listener:
        if setup is not None:
            await setup(listener)
        # A flooder's close waits behind what it queued: give up on the goodbye after 1 s.
        senders = [await connect(server.ws(path), close_timeout=1) for path in sender_paths]
        try:
            for ws in senders:
                if setup is not None:
                    await setup(ws)
            deadline = time.monotonic() + seconds
            counting = asyncio.create_task(_count(listener, counts, seconds + 1))
            await asyncio.gather(*(_send_until(ws, frame, deadline, pace) for ws in senders))
            return await counting
        finally:
            await asyncio.gather(*(ws.close() for ws in senders))


def lobby_join(room: str) -> Callable[[ClientConnection], Awaitable[None]]:
    async def join(ws: ClientConnection) -> None:
        await ws.send(json.dumps({"type": "join", "room": room}))

    return join


def is_type(kind: str) -> Callable[[str], bool]:
    def check(frame: str) -> bool:
        try:
            return bool(json.loads(frame).get("type") == kind)
        except (ValueError, AttributeError):
            return False

    return check
