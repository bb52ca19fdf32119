"""Lesson 10's mutants: broadcasts that are slow, lossy, late or wrong."""

from __future__ import annotations

import asyncio
import json
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


@mutant("10.1", "ignores the encode it is given: json.dumps once, which the count never sees")
async def own_dumps(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = json.dumps(message)
    for send in receivers:
        await send(text)


@mutant("10.1", "sends the message itself, not its text")
async def sends_object(message: Any, receivers: list[Send], encode: Encode) -> None:
    encode(message)
    for send in receivers:
        await send(message)


@mutant("10.1", "skips the first receiver: receivers[1:]")
async def skips_first(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = encode(message)
    for send in receivers[1:]:
        await send(text)


@mutant("10.1", "gives every send a second, then drops it: a slow receiver loses messages")
async def second_each(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = encode(message)
    for send in receivers:
        try:
            await asyncio.wait_for(send(text), 1.0)
        except TimeoutError:
            continue


@mutant("10.1", "gathers the sends but does not await them: they finish after it returns")
async def unawaited_gather(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = encode(message)
    future = asyncio.gather(*(send(text) for send in receivers))
    _tasks.add(future)  # type: ignore[arg-type]
    future.add_done_callback(_tasks.discard)  # type: ignore[arg-type]


@mutant("10.1", "waits for the sends at most 0.5 s in all (asyncio.wait), then goes on")
async def bounded_wait(message: Any, receivers: list[Send], encode: Encode) -> None:
    text = encode(message)
    tasks = [asyncio.ensure_future(send(text)) for send in receivers]
    await asyncio.wait(tasks, timeout=0.5)


@mutant("10.1", "encodes once more to log the message's size")
async def logs_size(message: Any, receivers: list[Send], encode: Encode) -> None:
    size = len(encode(message))
    text = encode(message)
    for send in receivers:
        await send(text)
    del size
