"""Clients for checks, whose failures read as hints: "bob received nothing within 2 s".

A check that waits on a client says, when it gives up, what it waited for and from whom; and it
never waits long, since what it waits for comes in milliseconds when the code under test works.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from course_server.checks.harness import CheckFailed, Harness
from course_server.clients.websocket import send

WAIT = 2.0
"""Seconds a check waits for a message that should come at once (it comes in milliseconds)."""


async def receive(
    client: ClientConnection, who: str, wait: float = WAIT, harness: Harness | None = None
) -> Any:
    """The next message ``who`` receives; fail the check, saying so, if none comes.

    With a ``harness``, stop waiting as soon as the learner's code has raised on the server:
    nothing more is coming, and the verdict will say why.
    """
    incoming = asyncio.ensure_future(client.recv())  # cancelling recv() loses nothing
    try:
        async with asyncio.timeout(wait):
            while not (harness and harness.errors):
                done, _ = await asyncio.wait({incoming}, timeout=0.05)
                if done:
                    return incoming.result()
        raise CheckFailed(f"{who} received nothing: the server's code raised")
    except TimeoutError:
        raise CheckFailed(f"{who} received nothing within {wait:g} s") from None
    except ConnectionClosed:
        raise CheckFailed(f"{who}'s connection closed (code {client.close_code})") from None
    finally:
        incoming.cancel()


def dial(url: str, **options: Any) -> connect:
    """A WebSocket client for a check: quick to give up on the handshake and on the close.

    A cancelled check still closes its clients on the way out; with websockets' default close
    timeout (10 s) a server stuck in the learner's code would hold the check that long.
    """
    return connect(url, open_timeout=WAIT, close_timeout=0.5, **options)


def _shown(message: object) -> str:
    text = repr(message)
    return text if len(text) <= 60 else text[:57] + "..."


async def exchange(
    url: str, *messages: Any, as_json: bool = False, wait: float = WAIT
) -> list[Any]:
    """Send each message and read one reply to it; the replies, in order.

    Unlike ``clients.talk``, a connection that closes or a reply that never comes fails the
    check with a hint naming the message that got no answer.
    """
    replies: list[Any] = []
    try:
        async with dial(url) as websocket:
            for message in messages:
                await send(websocket, message)
                try:
                    async with asyncio.timeout(wait):
                        reply = await websocket.recv()
                except TimeoutError:
                    raise CheckFailed(f"no reply to {_shown(message)} within {wait:g} s") from None
                except ConnectionClosed:
                    code = websocket.close_code
                    raise CheckFailed(
                        f"after {_shown(message)} the server closed the connection (code {code}) "
                        "instead of replying"
                    ) from None
                replies.append(json.loads(reply) if as_json and isinstance(reply, str) else reply)
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise CheckFailed(f"the handshake was refused with HTTP {status}") from None
    return replies
