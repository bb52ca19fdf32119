"""``course_server.realtime.inbox``: uvicorn's receive queue, lighter; and uvicorn still fits it."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from conftest import wait_timeout
from uvicorn.protocols.websockets import websockets_sansio_impl

from course_server.realtime.inbox import Inbox

pytestmark = pytest.mark.anyio


def test_uvicorn_uses_only_what_inbox_offers() -> None:
    """If this fails, a uvicorn upgrade calls a method of its ``queue`` that ``Inbox`` lacks."""
    source = inspect.getsource(websockets_sansio_impl)
    used = set(re.findall(r"self\.queue\.(\w+)", source))
    assert used and used <= {name for name in dir(Inbox) if not name.startswith("_")}


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
