"""How the notebooks show chat frames: one short line each, timestamps checked, then left out.

A timestamp differs on every run, so a stored notebook output cannot show it. ``strip`` puts
what the timestamp *is* in its place (``<UTC ISO-8601>``, after checking that it is one), and
``describe`` turns a frame into the line a reader needs: id, kind, who, what.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from websockets.asyncio.client import ClientConnection

Frame = dict[str, Any]


def strip(frame: Frame | str) -> Frame:
    """The frame with its ``timestamp`` replaced by a description of it."""
    frame = json.loads(frame) if isinstance(frame, str) else dict(frame)
    if "timestamp" in frame:
        frame["timestamp"] = _kind_of_time(frame["timestamp"])
    return frame


def describe(frame: Frame | str) -> str:
    """One line per frame, e.g. ``#3 message  alice: hi`` or ``error invalid_json: …``."""
    frame = json.loads(frame) if isinstance(frame, str) else frame
    kind = frame.get("type")
    if kind == "message":
        line = f"#{frame['id']} message  {frame['username']}: {frame['content']}"
        if "client_msg_id" in frame:
            line += f"  (client_msg_id {frame['client_msg_id']!r})"
        return line
    if kind in {"join", "leave"}:
        return f"#{frame['id']} {kind:<8} {frame['content']}"
    if kind == "resume":
        return (
            f"resume   complete={frame['complete']} after={frame['after']} "
            f"oldest_id={frame['oldest_id']}"
        )
    if kind == "ack":
        return f"ack      client_msg_id {frame['client_msg_id']!r} is #{frame['id']}"
    if kind == "error":
        return f"error    {frame['code']}: {frame['message']}"
    return repr(frame)


async def receive(websocket: ClientConnection, count: int = 1, timeout: float = 5) -> list[Frame]:
    """Read ``count`` JSON frames; ``TimeoutError`` if they do not all come within ``timeout``."""
    async with asyncio.timeout(timeout):
        return [json.loads(await websocket.recv()) for _ in range(count)]


def _kind_of_time(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return f"<not ISO 8601: {value!r}>"
    if moment.utcoffset() != timedelta(0):
        return f"<ISO 8601, not UTC: {value!r}>"
    return "<UTC ISO-8601>"
