"""Lesson 09, bounded request bodies: over ``settings.max_message_bytes`` → 413, unread.

Without a bound, ``POST /feed/publish`` took a 40 MiB body, and 25 bodies of 2 MiB stayed in
memory at once: whatever an endpoint parses, it first holds whole. ``BodyLimit`` refuses a body
before it is read whole:

- a ``Content-Length`` over the limit → 413 at once, before the app runs or reads a byte;
- a body without one (``Transfer-Encoding: chunked``) is counted as it streams in, and the app
  gets 413 the moment the count passes the limit (Starlette's ``RequestBodyLimitMiddleware``,
  which FastAPI's request parsing knows).

Either way the 413 says ``Connection: close``. Before the connection closes, the server reads
and throws away what the client is still sending, for a few seconds at most (a "lingering
close", as nginx does): closing a socket with unread data makes the kernel send a reset, and a
client still sending its body would see a connection error instead of the 413. Nothing of the
body is kept, and a client that sends for longer is cut off. WebSockets are not HTTP bodies:
their frames are bounded by uvicorn's ``ws_max_size`` (1009).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = 413
LINGER = 5.0  # seconds at most spent reading (and dropping) the rest of a refused body
LINGER_IDLE = 1.0  # ... and at most this long waiting for the next piece of it


async def discard_rest(receive: Receive) -> None:
    """Read what is left of the request body and drop it, within ``LINGER`` seconds."""
    deadline = time.monotonic() + LINGER
    while (left := deadline - time.monotonic()) > 0:
        try:
            async with asyncio.timeout(min(left, LINGER_IDLE)):
                message = await receive()
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class BodyLimit:
    """ASGI middleware: HTTP request bodies of at most ``max_bytes``, else 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_bytes)
        self.inner = app  # what the limit wraps: a WebSocket goes straight there
        self.max_bytes = max_bytes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not ``async``: a WebSocket is handed on as the app's own awaitable, so this keeps no
        # coroutine frame of its own for as long as the WebSocket is held (lesson 09's memory).
        if scope["type"] != "http":
            return self.inner(scope, receive, send)
        return self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusing = False

        async def lingering(message: Message) -> None:
            nonlocal refusing
            if message["type"] == "http.response.start" and message["status"] == TOO_LARGE:
                refusing = True
                MutableHeaders(scope=message)["Connection"] = "close"
            if refusing and message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    # The whole 413 goes out now; only its end waits for the body to be read.
                    await send({**message, "more_body": True})
                    await discard_rest(receive)
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        declared = Headers(scope=scope).get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self.max_bytes:
            refusal = PlainTextResponse(
                f"Request body over {self.max_bytes} bytes", status_code=TOO_LARGE
            )
            await refusal(scope, receive, lingering)
            return
        await self.app(scope, receive, lingering)
