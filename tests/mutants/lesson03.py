"""Plausible wrong answers to lesson 03's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import asyncio

from fastapi import WebSocket, WebSocketDisconnect

from mutants.registry import mutant

# --- 03.1 Hub --------------------------------------------------------------------------------


class BaseHub:
    def __init__(self) -> None:
        self.connections: list[WebSocket] = []

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.connections.append(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        if websocket in self.connections:
            self.connections.remove(websocket)


@mutant("03.1", "the seed's: a dead connection raises out of the loop")
class SeedHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in self.connections:
            if connection != exclude:
                await connection.send_text(message)


@mutant("03.1", "sends to the sender too")
class EchoingHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)


@mutant("03.1", "skips a dead connection but keeps it")
class HoardingHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is not exclude:
                try:
                    await connection.send_text(message)
                except (WebSocketDisconnect, RuntimeError):
                    pass


# --- 03.2 Outbox -----------------------------------------------------------------------------


class BaseOutbox:
    cut_off_code = 4008
    queue_size: int | None = None  # None: the size the endpoint asks for

    def __init__(self, websocket: WebSocket, size: int = 8) -> None:
        self.websocket = websocket
        maxsize = size if self.queue_size is None else self.queue_size
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.closing: asyncio.Task[None] | None = None

    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return self.overflow()
        return True

    def overflow(self) -> bool:
        close = self.websocket.close(self.cut_off_code, "slow consumer")
        self.closing = asyncio.get_running_loop().create_task(close)
        return False

    async def drain(self) -> None:
        while self.closing is None:
            message = await self.queue.get()
            await self.websocket.send_text(message)


@mutant("03.2", "an unbounded queue: a stalled client is never cut off")
class UnboundedOutbox(BaseOutbox):
    queue_size = 0


@mutant("03.2", "a full queue drops the message but keeps the client")
class DroppingOutbox(BaseOutbox):
    def overflow(self) -> bool:
        return False


@mutant("03.2", "cuts off with 1000 instead of 4008")
class PoliteOutbox(BaseOutbox):
    cut_off_code = 1000


@mutant("03.2", "send() still says True after the cut-off")
class OptimisticOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        super().send(message)
        return True
