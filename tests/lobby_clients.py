"""A client of lesson 05's lobby (``WS /ws/lobby``) and the frames it expects back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from conftest import wait_timeout
from websockets.asyncio.client import ClientConnection

JOINED = {"type": "system", "message": "A user joined the room"}
LEFT = {"type": "system", "message": "A user left the room"}


def presence(room: str, count: int, names: list[str] | None = None) -> dict[str, Any]:
    return {"type": "presence", "room": room, "count": count, "names": names or []}


class Client:
    """A lobby client: sends frames as JSON, reads them back parsed, every read bounded."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket

    async def send(self, **frame: Any) -> None:
        await self.websocket.send(json.dumps(frame))

    async def recv(self) -> dict[str, Any]:
        async with asyncio.timeout(wait_timeout()):
            return json.loads(await self.websocket.recv())

    async def recv_n(self, count: int) -> list[dict[str, Any]]:
        return [await self.recv() for _ in range(count)]

    async def join(self, room: str, **extra: Any) -> dict[str, Any]:
        """Join ``room`` from no room; return the presence that confirms it."""
        await self.send(type="join", room=room, **extra)
        return await self.recv()
