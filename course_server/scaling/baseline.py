"""Lesson 07's baseline: the seed's ``ScalableConnectionManager`` on today's APIs, and no more.

The chapter's version imports ``aioredis`` (merged into redis-py as ``redis.asyncio`` in 4.2, and
no longer maintained) and starts its listener in ``@app.on_event("startup")`` (deprecated by
Starlette and FastAPI in favour of a ``lifespan``, which also says what happens at shutdown).
``PubSubManager`` and ``lifespan`` below are those two fixes and nothing else: one channel, every
message to every local socket. The lesson runs it in two processes, then names what it still
loses, which ``course_server.scaling.shared`` keeps.

``python -m course_server.scaling.baseline --port 0 --redis-url URL`` prints its URL, then serves
``WS /ws`` (each text frame goes to every client of every process) until Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from course_server.settings import Settings

CHANNEL = "chat_messages"  # the chapter's channel name


class PubSubManager:
    """This process's sockets, and one Redis channel that every process publishes to."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.connections: set[WebSocket] = set()

    async def broadcast(self, text: str) -> None:
        """Send to every client of every process: publish, and each process's listener delivers."""
        await self.redis.publish(CHANNEL, text)

    async def forward(self, pubsub: PubSub) -> None:
        """Deliver each message of the channel to this process's sockets, until cancelled."""
        async for message in pubsub.listen():
            if message["type"] == "message":
                for websocket in list(self.connections):  # a copy: clients leave meanwhile
                    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # one gone
                        await websocket.send_text(message["data"])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Subscribe before serving (no lost first message), stop the listener on the way out."""
    async with Redis.from_url(app.state.redis_url, decode_responses=True) as redis:
        async with redis.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            app.state.manager = manager = PubSubManager(redis)
            listener = asyncio.create_task(manager.forward(pubsub))
            yield
            listener.cancel()


def create_app(redis_url: str) -> FastAPI:
    """The baseline chat: ``WS /ws`` shared through the Redis at ``redis_url``."""
    app = FastAPI(title="Lesson 07's pub/sub baseline", lifespan=lifespan)
    app.state.redis_url = redis_url

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/ws")
    async def chat(websocket: WebSocket) -> None:
        manager: PubSubManager = websocket.app.state.manager
        await websocket.accept()
        manager.connections.add(websocket)
        try:
            async for text in websocket.iter_text():
                await manager.broadcast(text)
        finally:
            manager.connections.discard(websocket)

    return app


def main() -> None:
    # Only the command line needs the runner (a layer above scaling): the app above does not.
    from course_server.runner import serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    settings = Settings.from_env(log_level="warning")
    serve("baseline", create_app(args.redis_url), settings, args.host, args.port)


if __name__ == "__main__":
    main()
