"""Many cases in one check: the learner's function on each input, and the first one it gets wrong.

A rule with many cases (a parser, the bookkeeping of a token bucket) is checked on many inputs,
some generated. ``seeded`` makes the generated inputs the same on every run (a verdict must not
depend on the draw), yet different from the prompt's examples, so code shaped like the examples
fails. ``answers`` runs the learner's function on every input in one thread (not one thread per
input), and ``first_wrong`` turns the first disagreement into a hint: the input, what came back,
what was expected. Inputs are tried shortest first, so that hint is as short as it can be.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from typing import Any

from course_server.checks.harness import CheckFailed, Harness
from course_server.checks.report import described


def seeded(name: str) -> random.Random:
    """A random generator that draws the same inputs every time for the check ``name``."""
    return random.Random(name)


@dataclasses.dataclass(frozen=True)
class _Raised:
    error: Exception


async def answers(
    h: Harness, fn: Callable[[Any], Any], inputs: Sequence[Any], shown: Callable[[Any], str] = repr
) -> list[Any]:
    """``fn(x)`` for every input, in order; an input that makes ``fn`` raise fails the check.

    ``NotImplementedError`` (the stub) is let through, so the verdict says "not implemented".
    """

    def run_all() -> list[Any]:
        results: list[Any] = []
        for x in inputs:
            try:
                results.append(fn(x))
            except NotImplementedError:
                raise
            except Exception as exc:  # named in the hint, with the input that caused it
                results.append(_Raised(exc))
                break
        return results

    results: list[Any] = await h.call(run_all)
    if results and isinstance(results[-1], _Raised):
        x = inputs[len(results) - 1]
        raise CheckFailed(f"for {shown(x)} your code raised {described(results[-1].error)}")
    return results


def first_wrong(
    inputs: Sequence[Any],
    got: Sequence[Any],
    expected: Sequence[Any],
    shown: Callable[[Any], str] = repr,
) -> None:
    """Fail the check at the first input whose answer is not the expected one."""
    for x, mine, right in zip(inputs, got, expected, strict=True):
        if mine != right:
            raise CheckFailed(f"for {shown(x)}\nyou returned {mine!r}\nnot {right!r}")


async def agree(
    h: Harness,
    fn: Callable[[Any], Any],
    inputs: Sequence[Any],
    reference: Callable[[Any], Any],
    shown: Callable[[Any], str] = repr,
) -> None:
    """Fail the check unless ``fn`` answers every input as ``reference`` does."""
    ordered = sorted(inputs, key=lambda x: len(shown(x)))
    got = await answers(h, fn, ordered, shown)
    first_wrong(ordered, got, [reference(x) for x in ordered], shown)
