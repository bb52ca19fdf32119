"""Track every open WebSocket and event stream, so a shutdown can end each one cleanly.

uvicorn's own shutdown closes open WebSockets with 1012 ("Service Restart") and runs the
lifespan's shutdown only afterwards, when the sockets are already gone. To say goodbye with the
code the protocol defines for a server going down, the server first asks this registry to close
every session (see ``runner.CourseServer.shutdown``), then lets uvicorn finish. Connections served
through a ``fanout.Peer`` are closed just before, by the app's ``peers.Peers``, each behind the
frames still queued for it; a close sent from here would overtake them. This registry closes the
rest.

Server-Sent Event streams never finish on their own, so uvicorn would wait its whole graceful
timeout for them. The registry ends them the way a departing client would: their ``receive``
answers ``http.disconnect``, Starlette cancels the stream, and the generator's ``finally`` runs.
A browser's ``EventSource`` then reconnects with ``Last-Event-ID``, to this server's successor.

It is plain ASGI middleware, so every route is covered without any route opting in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from course_server.realtime.closecodes import CloseCode


class _Session:
    """One accepted WebSocket: its ASGI ``send`` and whether the server already closed it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.accepted = False
        self.closing = False
        self.closed_by_server = False

    async def send(self, message: Message) -> None:
        if self.closed_by_server:
            if message["type"] == "websocket.close":
                return  # the endpoint's own close after ours: already done
            # Starlette turns OSError into WebSocketDisconnect, which endpoints already handle.
            raise OSError("the server closed this WebSocket while shutting down")
        if message["type"] == "websocket.accept":
            self.accepted = True
        elif message["type"] == "websocket.close":
            self.closing = True  # the endpoint is already saying goodbye its own way
        await self._send(message)

    async def close(self, code: int, reason: str) -> None:
        if self.accepted and not self.closing and not self.closed_by_server:
            await self.send({"type": "websocket.close", "code": code, "reason": reason})
            self.closed_by_server = True


class _Stream:
    """One HTTP request; once its response says ``text/event-stream``, ``end()`` can end it."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.body_open = False
        self.event_stream = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.body_open = True
            self.event_stream = any(
                name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                for name, value in message.get("headers", ())
            )
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.body_open = False
        await self._send(message)

    async def finish(self) -> None:
        """Close the body of a stream we ended, so the client sees a clean end, not an error."""
        if self._ended.done() and self.body_open:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive(self) -> Message:
        if self._ended.done():
            return {"type": "http.disconnect"}
        message = asyncio.ensure_future(self._receive())
        waiting: set[asyncio.Future[Any]] = {message, self._ended}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if message.done():
            return message.result()
        message.cancel()
        return {"type": "http.disconnect"}

    def end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)


class SessionRegistry:
    """Every WebSocket session in flight; ``app.state.sessions`` holds the app's one."""

    def __init__(self) -> None:
        self._sessions: set[_Session] = set()
        self._streams: set[_Stream] = set()
        # Futures rather than one Event: an app may be served again on a new event loop.
        self._idle_waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        """Open WebSocket sessions (event streams are counted by ``streams``)."""
        return len(self._sessions)

    @property
    def streams(self) -> int:
        """Open Server-Sent Event streams."""
        return sum(1 for stream in self._streams if stream.event_stream)

    async def run_stream(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one HTTP request through ``app``; ``close_all`` ends it if it is an event stream.

        Costs nothing extra for ordinary requests: their ``receive`` is rarely even called.
        """
        stream = _Stream(receive, send)
        self._streams.add(stream)
        try:
            await app(scope, stream.receive, stream.send)
            await stream.finish()
        finally:
            self._streams.discard(stream)

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
        self,
        code: int = CloseCode.GOING_AWAY,
        reason: str = "Server shutting down",
        wait: float = 2.0,
    ) -> int:
        """End every event stream and send a close frame to every accepted WebSocket.

        Waits up to ``wait`` seconds for the WebSocket endpoints to return; returns how many
        WebSockets were closed.
        """
        for stream in tuple(self._streams):
            if stream.event_stream:
                stream.end()
        sessions = [
            s for s in list(self._sessions) if s.accepted and not (s.closing or s.closed_by_server)
        ]
        # A client that stopped reading never makes room for the close frame: bound each wait.
        results: list[Any] = await asyncio.gather(
            *(asyncio.wait_for(s.close(code, reason), wait) for s in sessions),
            return_exceptions=True,
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
        elif scope["type"] == "http":
            await self.registry.run_stream(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)
