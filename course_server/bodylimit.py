"""Lesson 09, bounded request bodies: over ``settings.max_message_bytes`` → 413, unread.

Without a bound, ``POST /feed/publish`` took a 40 MiB body, and 25 bodies of 2 MiB stayed in
memory at once: whatever an endpoint parses, it first holds whole. ``BodyLimit`` refuses a body
before it is read whole:

- a ``Content-Length`` over the limit → 413 at once, before the app runs or reads a byte;
- a body without one (``Transfer-Encoding: chunked``) is counted as it streams in, and the app
  gets 413 the moment the count passes the limit (Starlette's ``RequestBodyLimitMiddleware``,
  which FastAPI's request parsing knows).

Either way the 413 says ``Connection: close``, so uvicorn closes the connection instead of
reading the rest of the body to reach the next request. WebSockets are not HTTP bodies: their
frames are bounded by uvicorn's ``ws_max_size`` (1009).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = 413


class BodyLimit:
    """ASGI middleware: HTTP request bodies of at most ``max_bytes``, else 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_bytes)
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.strip().isdigit() and int(declared) > self.max_bytes:
            refusal = PlainTextResponse(
                f"Request body over {self.max_bytes} bytes",
                status_code=TOO_LARGE,
                headers={"Connection": "close"},
            )
            await refusal(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == TOO_LARGE:
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, receive, closing)
