"""``checks.shared``: what the checks of one run open once (a browser) and close at its end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from course_server.checks.shared import shared, sharing, starting

pytestmark = pytest.mark.anyio


class Opener:
    """An ``open`` for ``shared`` that counts how often it is entered and exited."""

    def __init__(self, fail: bool = False) -> None:
        self.entered = self.exited = 0
        self.fail = fail

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[str]:
        self.entered += 1
        if self.fail:
            raise OSError("the browser did not start")
        try:
            yield "browser"
        finally:
            self.exited += 1


async def test_what_a_run_shares_is_opened_once_and_closed_when_the_run_ends() -> None:
    opener = Opener()
    async with sharing():
        assert [await shared("b", opener) for _ in range(3)] == ["browser"] * 3
        assert (opener.entered, opener.exited) == (1, 0)
    assert opener.exited == 1


async def test_a_failure_to_open_fails_every_later_asker_without_trying_again() -> None:
    opener = Opener(fail=True)
    async with sharing():
        for _ in range(3):
            with pytest.raises(OSError, match="did not start"):
                await shared("b", opener)
    assert opener.entered == 1


async def test_each_run_opens_its_own() -> None:
    opener = Opener()
    for _ in range(2):
        async with sharing():
            await shared("b", opener)
    assert (opener.entered, opener.exited) == (2, 2)


async def test_shared_outside_a_run_is_a_mistake_said_plainly() -> None:
    with pytest.raises(RuntimeError, match="inside sharing"):
        await shared("b", Opener())


async def test_an_open_cut_short_by_a_deadline_is_named_once_and_tried_again() -> None:
    started, opened = asyncio.Event(), Opener()

    @contextlib.asynccontextmanager
    async def slow() -> AsyncIterator[str]:
        started.set()
        await asyncio.Event().wait()  # a browser that takes longer than the check may wait
        yield "never"

    async with sharing():
        waiting = asyncio.ensure_future(shared("browser", slow))
        await started.wait()
        assert starting() == ["browser"]  # still being opened
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert starting() == ["browser"]  # what the cut-short check was waiting for
        assert starting() == []
        assert await shared("browser", opened) == "browser"  # the next check tries again
