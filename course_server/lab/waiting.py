"""Wait for a condition with a deadline: for state that has no event to wait on.

A fixed ``sleep`` guesses how long something takes and is wrong on a slow machine; this checks
the condition itself, often, and gives up loudly at the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, interval: float = 0.01
) -> None:
    """Return as soon as ``check()`` is true; raise ``TimeoutError`` after ``timeout`` seconds.

    ``check`` may be a plain function or a coroutine function.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition still false after {timeout} s")
        await asyncio.sleep(interval)
