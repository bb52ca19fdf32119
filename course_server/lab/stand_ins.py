"""Stand-ins for a WebSocket and a ``Peer``: run code that does no I/O of its own, no server.

A room, a connection manager or a broadcast loop calls only a method or two of what it is
handed. These record those calls, so a lesson or a test sees what the code did, and where a
real send would have let other tasks run (lessons 03 to 05).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import WebSocketDisconnect

from course_server.realtime.fanout import PeerState, framed


class FakeSocket:
    """Records what it is sent; each send lets other tasks run, as a real write may.

    With ``pause=True`` each send waits until ``resume()``, as a real send waits for a slow
    client's buffer to drain; ``sending`` is set once it waits.
    """

    def __init__(self, name: str = "socket", *, pause: bool = False) -> None:
        self.name = name
        self.received: list[Any] = []
        self.pause = pause
        self.sending = asyncio.Event()
        self._resume = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, message: str) -> None:
        await self._send(message)

    async def send_json(self, message: Any) -> None:
        await self._send(message)

    def resume(self) -> None:
        self._resume.set()

    async def _send(self, message: Any) -> None:
        self.received.append(message)
        if self.pause:
            self.sending.set()
            await self._resume.wait()
        else:
            await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeSocket({self.name!r})"


class GoneSocket(FakeSocket):
    """A client that has disconnected: every send raises, as Starlette's does."""

    async def _send(self, message: Any) -> None:
        raise WebSocketDisconnect(1006)

    def __repr__(self) -> str:
        return f"GoneSocket({self.name!r})"


class FakePeer:
    """Stands in for a ``fanout.Peer``: records every frame it is sent, decoded, and a close.

    A room only calls ``send`` (which must not block) and ``close``, and reads ``state``.
    """

    def __init__(self) -> None:
        self.state = PeerState.OPEN
        self.frames: list[Any] = []
        self.closed: tuple[int, str] | None = None

    def send(self, message: Any) -> bool:
        self.frames.append(json.loads(framed(message).data))
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.state = PeerState.CLOSING
        self.closed = (code, reason)

    def take(self) -> list[Any]:
        """The frames sent since the last ``take``."""
        frames, self.frames = self.frames, []
        return frames
