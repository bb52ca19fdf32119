"""Track every open WebSocket so a shutdown can close each one with 1001 "Going Away".

uvicorn's own shutdown closes open WebSockets with 1012 ("Service Restart") and runs the
lifespan's shutdown only afterwards, when the sockets are already gone. To say goodbye with the
code the protocol defines for a server going down, the server first asks this registry to close
every session (see ``runner.CourseServer.shutdown``), then lets uvicorn finish.

It is plain ASGI middleware, so every WebSocket route is covered without any route opting in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

GOING_AWAY = 1001


class _Session:
    """One accepted WebSocket: its ASGI ``send`` and whether the server already closed it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.accepted = False
        self.closed_by_server = False

    async def send(self, message: Message) -> None:
        if self.closed_by_server:
            if message["type"] == "websocket.close":
                return  # the endpoint's own close after ours: already done
            # Starlette turns OSError into WebSocketDisconnect, which endpoints already handle.
            raise OSError("the server closed this WebSocket while shutting down")
        if message["type"] == "websocket.accept":
            self.accepted = True
        await self._send(message)

    async def close(self, code: int, reason: str) -> None:
        if self.accepted and not self.closed_by_server:
            await self.send({"type": "websocket.close", "code": code, "reason": reason})
            self.closed_by_server = True


class SessionRegistry:
    """Every WebSocket session in flight; ``app.state.sessions`` holds the app's one."""

    def __init__(self) -> None:
        self._sessions: set[_Session] = set()
        # Futures rather than one Event: an app may be served again on a new event loop.
        self._idle_waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self._sessions)

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one WebSocket connection through ``app``, registered while it lasts."""
        session = _Session(send)
        self._sessions.add(session)
        try:
            await app(scope, receive, session.send)
        finally:
            self._sessions.discard(session)
            if not self._sessions:
                for waiter in self._idle_waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                self._idle_waiters.clear()

    async def close_all(
        self, code: int = GOING_AWAY, reason: str = "Server shutting down", wait: float = 2.0
    ) -> int:
        """Send a close frame to every accepted session; wait up to ``wait`` s for them to end.

        Returns how many sessions were closed.
        """
        sessions = [s for s in list(self._sessions) if s.accepted and not s.closed_by_server]
        results: list[Any] = await asyncio.gather(
            *(s.close(code, reason) for s in sessions), return_exceptions=True
        )
        closed = sum(1 for r in results if not isinstance(r, BaseException))
        if self._sessions:
            idle = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(idle)
            try:
                await asyncio.wait_for(idle, timeout=wait)
            except TimeoutError:
                pass  # endpoints that ignore the disconnect are left to uvicorn to cancel
        return closed


class TrackSessions:
    """ASGI middleware: every WebSocket connection goes through ``registry.run``."""

    def __init__(self, app: ASGIApp, registry: SessionRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.registry.run(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)
