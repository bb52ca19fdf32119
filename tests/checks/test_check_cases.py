"""Many cases in one check: the first wrong answer, or the input that raised, makes the hint."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from course_server.checks import CheckFailed, Harness
from course_server.checks.cases import agree, answers, seeded
from course_server.checks.harness import LearnerError


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_seeded_draws_the_same_inputs_every_time() -> None:
    assert [seeded("x").random() for _ in range(2)] == [seeded("x").random()] * 2
    assert seeded("x").random() != seeded("y").random()


def test_the_hint_names_the_shortest_input_answered_wrong() -> None:
    async def scenario() -> None:
        await agree(Harness("t"), lambda n: n * 2, [1000, 3, 20], lambda n: n + n if n < 10 else 0)

    with pytest.raises(CheckFailed, match=r"(?s)for 20\nyou returned 40\nnot 0"):
        run(scenario())


def test_an_input_that_makes_the_code_raise_is_named() -> None:
    async def scenario() -> None:
        await answers(Harness("t"), lambda n: 1 // n, [2, 0, 1], shown=lambda n: f"n={n}")

    with pytest.raises(CheckFailed, match=r"for n=0 your code raised ZeroDivisionError"):
        run(scenario())


def test_not_implemented_is_let_through_for_the_verdict_to_say_so() -> None:
    def stub(n: int) -> int:
        raise NotImplementedError

    async def scenario() -> None:
        await answers(Harness("t"), stub, [1])

    with pytest.raises(LearnerError) as raised:
        run(scenario())
    assert isinstance(raised.value.error, NotImplementedError)
