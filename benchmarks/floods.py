"""Floods, measured: messages a bystander receives while one client floods a channel.

``python -m benchmarks.floods [--seconds 3]`` starts the course server with its default settings
(``COURSE_RATE_LIMIT=20``: a connection 20/s with a burst of 40, a user or guest address 40/s
with a burst of 80) and floods, from one client on loopback and as fast as it can send,
``/ws/broadcast``, ``/ws/lobby``, ``/ws/users/{id}`` and the chat under 20 guest names at once.
The flooder reconnects whenever the server closes it (1008), as an attacker would. A signed-in
bystander (a budget of its own) counts what reaches it. A token bucket bounds the count at
``80 + 40 × seconds``; before the limits, one client got 91,215 messages through the lobby and
120,548 through the broadcast in 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server import Settings, start
from course_server.security.tokens import create_access_token
from course_server.urls import ServerURLs

SECRET = "benchmarks-floods-secret-0123456789abcdef"
SAY = json.dumps({"type": "message", "content": "spam"})


async def flood(url: str, frame: str, seconds: float, first: str | None = None) -> int:
    """Send ``frame`` to ``url`` for ``seconds``, reconnecting after every close; frames sent."""
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        with contextlib.suppress(ConnectionClosed, OSError):
            async with connect(url, max_queue=None) as websocket:
                if first is not None:
                    await websocket.send(first)
                while time.monotonic() < end:
                    await websocket.send(frame)
                    sent += 1
                    if sent % 64 == 0:
                        await asyncio.sleep(0)  # let the reads of the bystander run
    return sent


async def count(websocket: ClientConnection, seconds: float, mark: str) -> int:
    """Frames containing ``mark`` among those ``websocket`` receives within ``seconds``."""
    hits = 0
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        async with asyncio.timeout(seconds):
            while True:
                hits += mark in str(await websocket.recv())
    return hits


async def measure(
    server: ServerURLs, seconds: float, token: str | None = None
) -> list[tuple[str, int, int]]:
    """(channel, relayed, sent) for each flood; ``token`` is the bystander's, bob's.

    Without one, bob's token is signed with ``SECRET``, the secret of the server ``main`` starts.
    """
    token = token or create_access_token("bob", SECRET, 600)
    rows = []
    join = json.dumps({"type": "join", "room": "flooded"})
    cases = [
        ("/ws/broadcast", "/ws/broadcast", [("/ws/broadcast", "spam", None)], "Someone said: spam"),
        ("/ws/lobby", "/ws/lobby", [("/ws/lobby", SAY, join)], '"spam"'),
        (
            "/ws/users/{id}",
            "/ws/users/bob",
            [
                (
                    "/ws/users/x",
                    json.dumps({"type": "private_message", "to": "bob", "message": "s"}),
                    None,
                )
            ],
            "From x: s",
        ),
        (
            "chat, 20 guest names",
            "/chat/flooded/bob",
            [(f"/chat/flooded/guest{i}", SAY, None) for i in range(20)],
            '"type":"message","username":"guest',  # not their joins and leaves
        ),
    ]
    for label, watch, floods, mark in cases:
        async with connect(server.ws(f"{watch}?token={token}"), max_queue=None) as bystander:
            if watch == "/ws/lobby":
                await bystander.send(join)
            counting = asyncio.create_task(count(bystander, seconds + 1, mark))
            sent = await asyncio.gather(
                *(flood(server.ws(path), frame, seconds, first) for path, frame, first in floods)
            )
            rows.append((label, await counting, sum(sent)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each flood lasts")
    args = parser.parse_args()
    settings = Settings(jwt_secret=SECRET)
    budget = 4 * settings.rate_limit + 2 * settings.rate_limit * args.seconds
    with start(name="floods", settings=settings) as server:
        rows = asyncio.run(measure(server, args.seconds))
    print(f"{'channel':<22} {'relayed':>8} {'sent':>8}   (bound {budget:.0f} in {args.seconds} s)")
    for label, relayed, sent in rows:
        print(f"{label:<22} {relayed:>8} {sent:>8}")


if __name__ == "__main__":
    main()
