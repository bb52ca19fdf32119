"""Lesson 03's dead-client scenario, runnable against any broadcast room, naive or not.

A client that vanishes hurts a naive room only if a broadcast reaches it in a narrow window:
after the server's network layer has seen the connection die, before the client's own endpoint
has run and removed it. A busy server makes that window wide. ``dead_client`` makes it certain:
it holds the server's loop (``misbehave.server_busy``) while one client vanishes and another
speaks, so the server meets both events in the same turn of its loop, in that order.
"""

from __future__ import annotations

import asyncio
import dataclasses

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server.clients.misbehave import (
    RawClient,
    ServerError,
    server_busy,
    server_errors,
    settled,
)
from course_server.runner import RunningServer


@dataclasses.dataclass
class Heard:
    """What one client heard: its messages, and its close code if the connection ended."""

    messages: list[str | bytes]
    close_code: int | None  # None: still open when we stopped listening

    def __str__(self) -> str:
        ending = "still connected" if self.close_code is None else f"closed {self.close_code}"
        return f"{self.messages!r}, {ending}"


async def listen(websocket: ClientConnection, quiet: float = 0.5, limit: float = 5) -> Heard:
    """Collect messages until the connection ends or none came for ``quiet`` seconds.

    Proving that a message never arrives takes a deadline; ``quiet`` is it.
    """
    messages: list[str | bytes] = []
    try:
        async with asyncio.timeout(limit):
            while True:
                messages.append(await asyncio.wait_for(websocket.recv(), quiet))
    except (TimeoutError, ConnectionClosed):
        pass
    return Heard(messages, websocket.close_code)


@dataclasses.dataclass
class DeadClientRun:
    """What each client heard, and what the server logged, when the ghost vanished."""

    heard: dict[str, Heard]
    server_log: list[ServerError]


async def dead_client(server: RunningServer, path: str, text: str = "hello") -> DeadClientRun:
    """``first``, a ghost, ``second`` and ``sender`` join; the ghost vanishes, the sender speaks.

    Reports what ``first``, ``second`` and ``sender`` heard, and the server's warnings and
    errors meanwhile. Returns once the server has finished with all of them, so run it on a
    server with no other clients; what the server logs as they hang up is not reported.
    """
    url = server.ws(path)
    names = ("first", "second", "sender")
    with server_errors() as log:
        # Join one at a time, so the server's list holds them in this order.
        first = await connect(url)
        ghost = await RawClient.connect(url)
        second = await connect(url)
        sender = await connect(url)
        clients = (first, second, sender)
        try:
            async with server_busy(server):
                ghost.vanish()
                await sender.send(text)
            heard = await asyncio.gather(*(listen(c) for c in clients))
            seen = list(log)
        finally:
            for client in clients:
                client.transport.abort()
            await settled(server)
    return DeadClientRun(dict(zip(names, heard, strict=True)), seen)
