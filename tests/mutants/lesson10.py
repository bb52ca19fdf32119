"""Lesson 10's mutants: broadcasts that are slow, lossy, late or wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mutants.registry import mutant

Send = Callable[[str], Awaitable[None]]
Encode = Callable[[Any], str]


@mutant("10.1", "encodes per receiver: right, but no better than the naive fan-out")
async def per_receiver(message: Any, receivers: list[Send], encode: Encode) -> None:
    for send in receivers:
        await send(encode(message))


@mutant("10.1", "gives a slow receiver 50 ms, then drops its message silently")
async def drops_slow(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = encode(message)
    for send in receivers:
        try:
            await asyncio.wait_for(send(text), 0.05)
        except TimeoutError:
            continue


_tasks: set[asyncio.Task[None]] = set()


@mutant("10.1", "fire-and-forget tasks: a slow receiver's messages come late and reordered")
async def fire_and_forget(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = encode(message)
    for send in receivers:
        task = asyncio.ensure_future(send(text))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


_cache: dict[str, str] = {}


@mutant("10.1", "caches the text in a module variable: every broadcast sends the first one")
async def cached(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = _cache.setdefault("text", encode(message))
    for send in receivers:
        await send(text)
