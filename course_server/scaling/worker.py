"""Lesson 07: commands queued for Redis, and the one task per structure that sends them.

The chat's rooms, the lobby and lesson 03's relay never await in the methods their endpoints
call: each only queues a command, as lesson 03's ``Peer.send`` only queues a frame. A
``Worker`` sends its queue in order, up to ``batch`` commands per call of ``send`` (one round
trip), wakes when something is queued, runs ``tidy`` (unsubscribe, sweep) once the queue is
empty, and says when it is idle: nothing queued, nothing on its way. At shutdown, ``aclose``
gives the queue a moment to go out, then stops the task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from course_server.scaling.link import stop_tasks

log = logging.getLogger("course_server.redis")

BATCH = 256  # commands per round trip

C = TypeVar("C")


class Worker(Generic[C]):
    """A queue of commands for Redis and the task that sends it (``what`` names them in logs)."""

    def __init__(
        self,
        what: str,
        send: Callable[[list[C]], Awaitable[None]],
        *,
        tidy: Callable[[], Awaitable[None]] | None = None,
        limit: int | None = None,
        batch: int = BATCH,
    ) -> None:
        """``send`` gets each batch in order; past ``limit`` queued, ``submit`` refuses."""
        self.what = what
        self._send, self._tidy = send, tidy
        self._limit, self._batch = limit, batch
        self._queue: deque[C] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while no command is queued or on its way
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, command: C, *, force: bool = False) -> bool:
        """Queue ``command`` (never awaits); False if the queue is full and not ``force``."""
        if not force and self._limit is not None and len(self._queue) >= self._limit:
            return False
        self._queue.append(command)
        self._idle.clear()
        self._wake.set()
        return True

    def poke(self) -> None:
        """Run ``tidy`` soon, even with nothing queued."""
        self._wake.set()

    async def wait_idle(self) -> None:
        """Return once nothing is queued or on its way."""
        await self._idle.wait()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self, timeout: float = 2.0) -> None:
        """Wait up to ``timeout`` for the queue to go out (log what did not), then stop."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            log.warning("%d %s were not sent to Redis", len(self._queue), self.what)
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                try:
                    await self._send_next()
                except Exception:  # a bug must not stop every command of this process
                    log.exception("%s for Redis failed", self.what)
            if self._tidy is not None:
                try:
                    await self._tidy()
                except Exception:
                    log.exception("tidying up after %s failed", self.what)
            if not self._queue:  # else ``submit`` woke us while tidying: send those first
                self._idle.set()

    async def _send_next(self) -> None:
        # A method of its own, so no local variable keeps a batch (and its rooms) alive after.
        batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
        await self._send(batch)
