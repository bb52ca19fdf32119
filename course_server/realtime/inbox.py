"""A small receive queue for each held WebSocket: uvicorn's, in a tenth of the memory (lesson 09).

uvicorn's sans-I/O protocol keeps what a client sent, until the app's ``receive()`` takes it,
in an ``asyncio.Queue``. A Queue makes three deques and an Event (a fourth deque) up front,
about 3.3 KiB, for a queue that holds a message or two: uvicorn stops reading the socket while
one waits. At ten thousand connections that is 32 MiB. ``Inbox`` is the part uvicorn uses
(``put_nowait``, ``get``, ``empty``), on two lists: about 0.2 KiB. ``Gate`` does the same for
the ``asyncio.Event`` uvicorn's ``send()`` waits on while the client's buffers are full.

``runner.SansIOProtocol`` puts them in place of uvicorn's ``queue`` and ``writable``;
``tests/realtime/test_inbox.py`` fails loudly if uvicorn starts using another method of them.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A FIFO with no size limit; ``get()`` waits for an item. Several getters are fine."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[T] = []  # a message or two: pop(0) costs nothing at that size
        self._getters: list[asyncio.Future[None]] = []

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_one()

    async def get(self) -> T:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Woken, then cancelled before taking the item: another getter must take it.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        return self._items.pop(0)

    def _wake_one(self) -> None:
        for waiter in self._getters:
            if not waiter.done():
                waiter.set_result(None)
                return


class Gate:
    """An ``asyncio.Event`` that makes its list of waiters only when a task has to wait."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        """Return once the gate is set.

        As with ``asyncio.Event``, a woken waiter does not check again: every task waiting when
        ``set()`` ran goes through, even if the gate was cleared since (uvicorn relies on it).
        """
        if self._open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True
