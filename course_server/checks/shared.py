"""What the checks of one exercise share: things too costly to start once per check.

Every check gets a fresh ``Harness``, but a browser takes a second or more to launch, and
exercise 04.3 has five checks. ``run`` opens a ``sharing()`` scope around its checks (they all
run on its one event loop), and a check asks for such a thing with ``shared(key, open)``: the
first check to ask enters ``open()``, later ones get the same value, and the scope closes it
when the run ends. A check still isolates what must not leak between checks (a browser
context, not a browser).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

T = TypeVar("T")


@dataclasses.dataclass
class _Scope:
    stack: contextlib.AsyncExitStack
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    cut_short: list[str] = dataclasses.field(default_factory=list)  # opens a deadline ended


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "course_checks_shared", default=None
)


class _Starting:
    """What ``shared`` holds for a key while its ``open()`` is still being entered."""


def starting() -> list[str]:
    """The keys whose ``open()`` a deadline cut short, or that are still being entered.

    What a check that ran out of time was waiting for when it was not the learner's code (a
    browser slow to start); asking forgets the ones cut short.
    """
    scope = _scope.get()
    if scope is None:
        return []
    cut, scope.cut_short = scope.cut_short, []
    return cut + [k for k, v in scope.values.items() if isinstance(v, _Starting)]


@contextlib.asynccontextmanager
async def sharing() -> AsyncIterator[None]:
    """Let the checks run inside share what they open with ``shared``; close it all after."""
    async with contextlib.AsyncExitStack() as stack:
        token = _scope.set(_Scope(stack))
        try:
            yield
        finally:
            _scope.reset(token)


async def shared(key: str, open: Callable[[], AbstractAsyncContextManager[T]]) -> T:
    """The value of ``open()``, entered by the first check that asks, for every later one.

    A failure is kept too: a browser that did not start fails each check that asks, at once,
    with the same exception, instead of being launched again.
    """
    scope = _scope.get()
    if scope is None:
        raise RuntimeError("shared() is for checks, which run inside sharing()")
    values = scope.values
    if key not in values:
        values[key] = _Starting()
        try:
            values[key] = await scope.stack.enter_async_context(open())
        except Exception as exc:
            values[key] = exc
        except BaseException:  # cancelled (the check's deadline): the next check tries again
            del values[key]
            scope.cut_short.append(key)
            raise
    value = values[key]
    if isinstance(value, Exception):
        raise value
    return value  # type: ignore[no-any-return]
