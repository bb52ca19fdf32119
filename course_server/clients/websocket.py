"""Small WebSocket clients for notebooks and tests, built on ``websockets``' asyncio API.

In Jupyter, ``await`` them at the top level of a cell: the kernel's event loop is already
running, so ``asyncio.run`` is not allowed there. From synchronous code, use ``run_sync``.

- ``talk(url, *messages)``: one reply per message, for request/response conversations.
- ``attempt(url, *messages)``: what a client really sees from the handshake to the close:
  refused with an HTTP status, or accepted and later closed with a code and a reason.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

T = TypeVar("T")

Message = str | bytes | dict[str, Any] | list[Any]


async def send(websocket: ClientConnection, message: Message) -> None:
    """Send text as a text frame, bytes as a binary frame, dicts and lists as JSON text."""
    if isinstance(message, dict | list):
        message = json.dumps(message)
    await websocket.send(message)


async def talk(
    url: str,
    *messages: Message,
    as_json: bool = False,
    timeout: float = 5,
    **connect_options: Any,
) -> list[Any]:
    """Connect, send each message, read one reply after each; return the replies in order.

    Text replies come back as ``str`` (parsed with ``json.loads`` if ``as_json``), binary ones
    as ``bytes``. ``connect_options`` go to ``websockets.asyncio.client.connect``. The whole
    conversation must end within ``timeout`` seconds, or ``TimeoutError`` says it did not.
    """
    replies: list[Any] = []
    async with asyncio.timeout(timeout), connect(url, **connect_options) as websocket:
        for message in messages:
            await send(websocket, message)
            reply = await websocket.recv()
            replies.append(json.loads(reply) if as_json and isinstance(reply, str) else reply)
    return replies


@dataclasses.dataclass
class Attempt:
    """What a client saw: a refused handshake (HTTP status, body) or a connection and its close.

    ``close_code`` is the code in the server's close frame; 1006 means the connection ended
    without one. A refused handshake has no close code at all: no WebSocket ever opened.
    """

    accepted: bool
    http_status: int
    body: str = ""
    close_code: int | None = None
    close_reason: str | None = None
    received: list[str | bytes] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        if not self.accepted:
            return f"refused: HTTP {self.http_status}, body {self.body!r}, no close code"
        return (
            f"accepted (HTTP {self.http_status}), received {self.received!r}, "
            f"closed {self.close_code} {self.close_reason!r}"
        )


async def attempt(
    url: str,
    *messages: Message,
    timeout: float = 5,
    **connect_options: Any,
) -> Attempt:
    """Connect, send ``messages``, then read until the server closes; report what was seen.

    Meant for endpoints that end the conversation themselves (refuse, or close with a code).
    If the server has not closed within ``timeout`` seconds, ``TimeoutError`` says so: use
    ``talk`` for endpoints that keep talking.
    """
    try:
        async with asyncio.timeout(timeout):
            async with connect(url, **connect_options) as websocket:
                response = websocket.response
                assert response is not None  # connect() returns once the handshake is done
                seen = Attempt(accepted=True, http_status=response.status_code)
                try:
                    for message in messages:
                        await send(websocket, message)
                except ConnectionClosed:
                    pass  # the server closed first; what it sent before is still read below
                try:
                    async for received in websocket:
                        seen.received.append(received)
                except ConnectionClosed:
                    pass  # closed with an error code: close_code says which
                seen.close_code, seen.close_reason = websocket.close_code, websocket.close_reason
                return seen
    except InvalidStatus as exc:
        response = exc.response
        return Attempt(False, response.status_code, response.body.decode(errors="replace"))
    except TimeoutError:
        message = f"{url}: no close within {timeout} s (for endpoints that stay open, use talk)"
        raise TimeoutError(message) from None


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run a coroutine from synchronous code and return its result, even inside Jupyter.

    With no event loop running (a plain script), this is ``asyncio.run(coro)``. With one running
    (a synchronous function called from a notebook cell), the coroutine runs to completion on a
    fresh loop in a worker thread while the caller's thread waits. Unlike ``nest_asyncio``, it
    never re-enters the running loop, so that loop's tasks are never run from inside one of its
    own callbacks. The price: the caller's loop is blocked meanwhile, so ``coro`` must not need
    anything that runs on it (the course server runs on its own thread, so clients of it are fine).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(asyncio.wait_for(coro, timeout))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="run_sync") as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coro, timeout)).result()
