"""``course_server.realtime.inbox``: uvicorn's receive queue and write gate, lighter; and
uvicorn still uses only what they offer."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from conftest import wait_timeout
from uvicorn.protocols.websockets import websockets_sansio_impl

from course_server.realtime.inbox import Gate, Inbox

pytestmark = pytest.mark.anyio


def test_uvicorn_uses_only_what_inbox_offers() -> None:
    """If this fails, a uvicorn upgrade calls a method of its ``queue`` that ``Inbox`` lacks."""
    source = inspect.getsource(websockets_sansio_impl)
    for attribute, stand_in in (("queue", Inbox), ("writable", Gate)):
        used = set(re.findall(rf"self\.{attribute}\.(\w+)", source))
        assert used and used <= {name for name in dir(stand_in) if not name.startswith("_")}


async def test_get_returns_items_in_the_order_they_were_put() -> None:
    inbox: Inbox[int] = Inbox()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert (await inbox.get(), await inbox.get()) == (1, 2)
    assert inbox.empty()


async def test_get_waits_for_the_next_item() -> None:
    inbox: Inbox[str] = Inbox()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)  # the getter starts and waits
    assert not getter.done()
    inbox.put_nowait("hi")
    async with asyncio.timeout(wait_timeout()):
        assert await getter == "hi"


async def test_an_item_goes_to_one_getter_and_the_next_to_the_other() -> None:
    inbox: Inbox[int] = Inbox()
    getters = [asyncio.create_task(inbox.get()) for _ in range(2)]
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    async with asyncio.timeout(wait_timeout()):
        assert sorted(await asyncio.gather(*getters)) == [1, 2]


async def test_a_cancelled_getter_leaves_the_item_to_another() -> None:
    inbox: Inbox[int] = Inbox()
    first, second = (asyncio.create_task(inbox.get()) for _ in range(2))
    await asyncio.sleep(0)
    inbox.put_nowait(1)  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    async with asyncio.timeout(wait_timeout()):
        assert await second == 1
    assert first.cancelled()


async def test_a_gate_lets_waiters_through_once_it_is_set() -> None:
    gate = Gate()
    waiters = [asyncio.create_task(gate.wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    gate.set()
    async with asyncio.timeout(wait_timeout()):
        assert await asyncio.gather(*waiters) == [True, True]


async def test_a_set_gate_does_not_wait_and_a_cleared_one_does() -> None:
    gate = Gate()
    gate.set()
    assert gate.is_set() and await gate.wait()
    gate.clear()
    waiter = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    waiter.cancel()  # a cancelled waiter leaves nothing behind
    await asyncio.wait({waiter})
    gate.set()
    assert gate.is_set()


async def test_a_waiter_woken_by_set_goes_through_even_if_cleared_since() -> None:
    """As with asyncio.Event: uvicorn's queued sends all proceed once the buffer drains."""
    gate = Gate()
    waiter = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    gate.set()
    gate.clear()  # the transport paused again before the waiter ran
    async with asyncio.timeout(wait_timeout()):
        assert await waiter
