"""``checks.shared``: what the checks of one run open once (a browser) and close at its end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from course_server.checks.shared import shared, sharing

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
