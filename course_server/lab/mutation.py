"""A disconnect during a broadcast, in pure Python: the loop skips someone, or raises.

``naive.ConnectionManager.broadcast`` awaits each send while it iterates over its list. Every
``await`` lets other tasks run, and one of them may be the endpoint of a client that just left,
removing itself from the very list being iterated:

- over a **list** (the seed), the items after the removed one shift left, and the loop's next
  index jumps one: a client that is still there silently misses the message;
- over a **set** (as many tutorials write it), Python notices and raises
  ``RuntimeError: Set changed size during iteration`` in the middle of the broadcast.

No server is needed to see it: ``stand_ins.FakeSocket`` stands in for a WebSocket, and one of
them pauses inside ``send_text``, exactly where a real send waits for a slow client's buffer to
drain.
"""

from __future__ import annotations

import asyncio
from typing import Any

from course_server.lab.stand_ins import FakeSocket


class SetConnectionManager:
    """The same manager over a ``set``, as many tutorials write it (don't copy this either)."""

    def __init__(self) -> None:
        self.active_connections: set[FakeSocket] = set()

    async def connect(self, websocket: FakeSocket) -> None:
        self.active_connections.add(websocket)

    def disconnect(self, websocket: FakeSocket) -> None:
        self.active_connections.discard(websocket)

    async def broadcast(self, message: str) -> None:
        for connection in self.active_connections:
            await connection.send_text(message)


async def leave_during_broadcast(
    manager: Any, sockets: list[FakeSocket], slow: FakeSocket, leaver: FakeSocket
) -> str:
    """Connect ``sockets``, broadcast, and let ``leaver`` disconnect while ``slow`` is sending.

    ``manager`` is a ``naive.ConnectionManager`` or a ``SetConnectionManager``; the fakes stand
    in for WebSockets, which is all its methods need.

    Returns ``"completed"`` or the exception the broadcast raised, as ``Type: message``.
    """
    for websocket in sockets:
        await manager.connect(websocket)

    async def leave() -> None:
        await slow.sending.wait()
        manager.disconnect(leaver)  # what the leaver's endpoint does when it notices
        slow.resume()

    leaving = asyncio.ensure_future(leave())
    try:
        await manager.broadcast("hello")
        return "completed"
    except RuntimeError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        slow.resume()
        await leaving
