"""Plausible wrong answers to lesson 03's exercises, one bug each (see ``mutants``).

Equivalent survivors of ``scripts/mutate.py`` (03.3): ``min(n, 64)`` bounding the exponent,
its 64 changed to 63 or 65. Any bound past log2(cap / base) gives the same waits, and no check
uses a cap 2⁶³ times its base.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState
from websockets.exceptions import InvalidHandshake

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


# --- 03.1 Hub: more mistakes -----------------------------------------------------------------


@mutant("03.1", "iterates the live list while removing from it: the next member is skipped")
class LiveListHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in self.connections:
            if connection is exclude:
                continue
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)


@mutant("03.1", "catches only WebSocketDisconnect: a member the server closed raises through")
class DisconnectOnlyHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is exclude:
                continue
            try:
                await connection.send_text(message)
            except WebSocketDisconnect:
                self.disconnect(connection)


@mutant("03.1", "stops at the first dead connection")
class GiveUpHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is exclude:
                continue
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)
                return


@mutant("03.1", "gather() without return_exceptions: the first failure ends the sender's endpoint")
class GatheringHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        others = [c for c in self.connections if c is not exclude]
        await asyncio.gather(*(c.send_text(message) for c in others))


@mutant("03.1", "prunes with connections.remove: a member already removed raises ValueError")
class RemovingHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is exclude:
                continue
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.connections.remove(connection)


@mutant("03.1", "excludes the sender by removing it from the hub")
class ExpellingHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        self.disconnect(exclude)
        for connection in list(self.connections):
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)


@mutant("03.1", "cheat: skips the newest connection, as if the sender were always the last")
class NewestHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections)[:-1]:
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)


@mutant("03.1", "deletes the failed positions after the loop: the wrong member goes")
class PositionalHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        failed = []
        for index, connection in enumerate(self.connections):
            if connection is exclude:
                continue
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                failed.append(index)
        for index in failed:
            del self.connections[index]


# --- 03.2 Outbox: more mistakes --------------------------------------------------------------


@mutant("03.2", "cuts off one message early: when the queue has one free slot left")
class EarlyOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        if self.queue.qsize() >= self.queue.maxsize - 1:
            return self.overflow()
        self.queue.put_nowait(message)
        return True


@mutant("03.2", "counts every message sent, not the ones still queued")
class CountingOutbox(BaseOutbox):
    sent = 0

    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        self.sent += 1
        if self.sent > self.queue.maxsize:
            return self.overflow()
        self.queue.put_nowait(message)
        return True


@mutant("03.2", "closes with reason 'too slow'")
class RudeOutbox(BaseOutbox):
    def overflow(self) -> bool:
        close = self.websocket.close(4008, "too slow")
        self.closing = asyncio.get_running_loop().create_task(close)
        return False


@mutant("03.2", "does not keep the close task in self.closing")
class ForgetfulOutbox(BaseOutbox):
    cut_off = False

    def send(self, message: str) -> bool:
        if self.cut_off:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.cut_off = True
            close = self.websocket.close(self.cut_off_code, "slow consumer")
            self.close_task = asyncio.get_running_loop().create_task(close)
            return False
        return True


@mutant("03.2", "no cut-off flag: every send to a full queue starts another close")
class ReclosingOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return self.overflow()
        return True


@mutant("03.2", "queues with a put() task: the queue never looks full")
class PuttingOutbox(BaseOutbox):
    pending: ClassVar[set[asyncio.Task[None]]] = set()

    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        task = asyncio.get_running_loop().create_task(self.queue.put(message))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return True


@mutant("03.2", "the writer sends one message and stops")
class OnceOutbox(BaseOutbox):
    async def drain(self) -> None:
        message = await self.queue.get()
        await self.websocket.send_text(message)


@mutant("03.2", "the writer drains what is queued, then returns")
class EmptyingOutbox(BaseOutbox):
    async def drain(self) -> None:
        while not self.queue.empty():  # at the start there is nothing yet: the writer is done
            await self.websocket.send_text(self.queue.get_nowait())


# --- 03.1 and 03.2: members coming and going mid-broadcast, cut-off details ------------------


@mutant("03.1", "puts back the list copied before the sends: joins and leaves meanwhile are undone")
class SnapshotHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        alive = []
        for connection in list(self.connections):
            if connection is not exclude:
                try:
                    await connection.send_text(message)
                except (WebSocketDisconnect, RuntimeError):
                    continue
            alive.append(connection)
        self.connections = alive


@mutant("03.1", "prunes by client_state before sending: a dead one that looks open raises")
class StateHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is exclude:
                continue
            if connection.client_state is not WebSocketState.CONNECTED:
                self.disconnect(connection)
                continue
            await connection.send_text(message)


@mutant("03.1", "sends in tasks it never awaits: a failed send prunes nothing")
class FireAndForgetHub(BaseHub):
    tasks: ClassVar[set[asyncio.Task[None]]] = set()

    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections):
            if connection is not exclude:
                task = asyncio.get_running_loop().create_task(connection.send_text(message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)


@mutant("03.1", "cheat: skips the oldest connection, as if the sender were always the first")
class OldestHub(BaseHub):
    async def broadcast_except(self, message: str, exclude: WebSocket) -> None:
        for connection in list(self.connections)[1:]:
            try:
                await connection.send_text(message)
            except (WebSocketDisconnect, RuntimeError):
                self.disconnect(connection)


@mutant("03.2", "cuts off with 1008 (policy violation) instead of 4008")
class PolicyOutbox(BaseOutbox):
    cut_off_code = 1008


@mutant("03.2", "keeps True in self.closing, not the close task")
class FlagOutbox(BaseOutbox):
    tasks: ClassVar[set[asyncio.Task[None]]] = set()

    def overflow(self) -> bool:
        task = asyncio.get_running_loop().create_task(self.websocket.close(4008, "slow consumer"))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.closing = True  # type: ignore[assignment]  # the mistake: a flag, not the task
        return False


@mutant("03.2", "a full queue drops its oldest message to make room: never cuts off")
class OldestOutOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(message)
        return True


@mutant("03.2", "qsize() > maxsize: never true, so put_nowait raises QueueFull out of send()")
class OverfullOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        if self.queue.qsize() > self.queue.maxsize:
            return self.overflow()
        self.queue.put_nowait(message)
        return True


@mutant("03.2", "the send that cuts off still says True: False only from the next one")
class LateFalseOutbox(BaseOutbox):
    def send(self, message: str) -> bool:
        if self.closing is not None:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflow()
        return True


# --- 03.3 reconnect --------------------------------------------------------------------------

RETRYABLE = (OSError, InvalidHandshake)
Connect = Callable[[], Awaitable[Any]]
Sleep = Callable[[float], Awaitable[None]]


def bound(base: float, cap: float, n: int) -> float:
    return min(cap, base * 2 ** min(n, 64))


@mutant("03.3", "no cap: the wait doubles for ever")
async def uncapped(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(rng() * base * 2.0 ** min(n, 64))


@mutant("03.3", "2**n unbounded: OverflowError past retry 1023")
async def overflowing(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(rng() * min(cap, base * 2**n))


@mutant("03.3", "caps after the jitter: every late retry waits exactly cap")
async def capped_after_jitter(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(min(cap, rng() * base * 2 ** min(n, 64)))


@mutant("03.3", "caps the multiplier, not the wait: base × min(cap, 2ⁿ)")
async def capped_multiplier(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(rng() * base * min(cap, 2 ** min(n, 64)))


@mutant("03.3", "equal jitter: half the bound, plus a random half")
async def equal_jitter(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        half = bound(base, cap, n) / 2
        await sleep(half + rng() * half)


@mutant("03.3", "no jitter: always the whole bound")
async def no_jitter(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(bound(base, cap, n))


@mutant("03.3", "retry n waits up to base·2ⁿ⁺¹: the first retry already doubled")
async def doubled_first(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(rng() * bound(base, cap, n + 1))


@mutant("03.3", "a fixed delay: rng() × base before every retry")
async def fixed_delay(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(rng() * min(cap, base))


@mutant("03.3", "jitter from random.random(), not the rng it is given")
async def own_random(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        await sleep(random.random() * bound(base, cap, n))


@mutant("03.3", "waits before the first try too")
async def waits_first(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        await sleep(rng() * bound(base, cap, n))
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
    return None


@mutant("03.3", "starts sleep(delay) as a task and does not await it: never waits")
async def sleep_in_the_background(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    waits: set[asyncio.Task[None]] = set()
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        # The mistake: sleep(...) alone warns "never awaited"; a task silences it, not the bug.
        wait = asyncio.ensure_future(sleep(rng() * bound(base, cap, n)))
        waits.add(wait)
        wait.add_done_callback(waits.discard)
    return None


@mutant("03.3", "time.sleep: blocks the event loop while it waits")
async def blocking_sleep(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                raise
        time.sleep(rng() * bound(base, cap, n))  # noqa: ASYNC251 - the mistake


@mutant("03.3", "waits after the last failure too, then raises")
async def waits_last(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            await sleep(rng() * bound(base, cap, n))
            if n == attempts - 1:
                raise
    return None


@mutant("03.3", "gives up quietly: returns None after the last failure")
async def swallowing(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts - 1:
                return None
        await sleep(rng() * bound(base, cap, n))
    return None


@mutant("03.3", "raises a new RuntimeError, not the last error")
async def new_error(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE as exc:
            if n == attempts - 1:
                raise RuntimeError(f"gave up after {attempts} attempts") from exc
        await sleep(rng() * bound(base, cap, n))
    return None


@mutant("03.3", "raises the first error, not the last")
async def first_error(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    first: BaseException | None = None
    for n in range(attempts):
        try:
            return await connect()
        except RETRYABLE as exc:
            first = first or exc
            if n == attempts - 1:
                raise first from None
        await sleep(rng() * bound(base, cap, n))
    return None


@mutant("03.3", "retries for ever, whatever attempts says")
async def relentless(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    n = 0
    while True:
        try:
            return await connect()
        except RETRYABLE:
            pass
        await sleep(rng() * bound(base, cap, n))
        n += 1


@mutant("03.3", "attempts retries after the first try: one call too many")
async def one_too_many(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts + 1):
        try:
            return await connect()
        except RETRYABLE:
            if n == attempts:
                raise
        await sleep(rng() * bound(base, cap, n))
    return None


@mutant("03.3", "retries every exception, a bug in connect() too")
async def retries_bugs(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except Exception:
            if n == attempts - 1:
                raise
        await sleep(rng() * bound(base, cap, n))
    return None


@mutant("03.3", "retries ConnectionRefusedError only: an HTTP 503 ends it")
async def refused_only(
    connect: Connect,
    *,
    base: float,
    cap: float,
    attempts: int,
    rng: Callable[[], float] = random.random,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    for n in range(attempts):
        try:
            return await connect()
        except ConnectionRefusedError:
            if n == attempts - 1:
                raise
        await sleep(rng() * bound(base, cap, n))
    return None
