"""Exercise checks: ``check("02.1", guess)`` runs exercise 02.1's checks against your ``guess``.

Each check plugs your code into a real server (a fresh FastAPI app on a free port), drives it
with real clients, and prints one line: ``✓ name`` or ``✗ name — hint``. ``check`` is an
ordinary function: call it from a notebook cell without ``await``. It returns within the
exercise's deadline even if your code loops forever (what is still looping keeps running in a
daemon thread until the kernel restarts).

The exercises live one module per lesson (``lesson02.py``, …), each registering its exercises
with ``exercise(...)`` and their checks with ``@ex.check(name)``; they are loaded on first use.
An exercise names the course's own implementations of it (``references=``): an answer that is,
inherits or calls one fails every check (see ``references.py``).

Environment variables:
- ``COURSE_CHECK_RESULTS``: a file to append each verdict to, one JSON line per ``check()``
  call. ``python -m course_server.grade`` sets it to read a notebook's verdicts.
- ``COURSE_CHECK_TIMEOUT_FACTOR``: multiply every check's deadline (e.g. 3 on a slow machine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import pkgutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from course_server.checks import references as _references
from course_server.checks.harness import CheckFailed, Harness, expect, expect_close, expect_equal
from course_server.checks.report import Report, Status, Verdict, failure
from course_server.checks.shared import sharing, starting

__all__ = [
    "CheckFailed",
    "Exercise",
    "Harness",
    "Report",
    "Status",
    "Verdict",
    "check",
    "evaluate",
    "exercise",
    "exercises",
    "expect",
    "expect_close",
    "expect_equal",
    "get",
]

RESULTS_ENV = "COURSE_CHECK_RESULTS"
FACTOR_ENV = "COURSE_CHECK_TIMEOUT_FACTOR"


CheckFunction = Callable[[Harness, Any], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    run: CheckFunction
    timeout: float


class Exercise:
    """One exercise: an id (``"02.1"``), a title, the name of the learner's object, checks.

    ``references`` are the course's own implementations of it (``"module:qualname"``), which an
    answer may not be, inherit or call.
    """

    def __init__(self, id: str, title: str, target: str, references: tuple[str, ...] = ()) -> None:
        self.id, self.title, self.target = id, title, target
        self.references = tuple(references)
        self.checks: list[Check] = []

    @property
    def lesson(self) -> str:
        return self.id.split(".")[0]

    @property
    def deadline(self) -> float:
        """The longest ``check()`` may take: every check's timeout, plus stopping servers."""
        return sum(c.timeout for c in self.checks) * _factor() + 10

    def check(self, name: str, timeout: float = 5) -> Callable[[CheckFunction], CheckFunction]:
        """Register the decorated ``async def (harness, implementation)`` as a check."""

        def register(run: CheckFunction) -> CheckFunction:
            self.checks.append(Check(name, run, timeout))
            return run

        return register

    def __repr__(self) -> str:
        return f"<Exercise {self.id} {self.title!r}: {len(self.checks)} checks>"


_registry: dict[str, Exercise] = {}
_loaded = False


def exercise(id: str, title: str, target: str, references: tuple[str, ...] = ()) -> Exercise:
    """Register a new exercise (in a lesson module) and return it, to add checks to.

    ``references``: the course's own implementations of the exercise, as ``"module:qualname"``
    (a class covers its methods), which the learner's answer may not use.
    """
    if id in _registry:
        raise ValueError(f"exercise {id} is registered twice")
    _registry[id] = Exercise(id, title, target, references)
    return _registry[id]


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            if module.name.startswith("lesson"):
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


def exercises(lesson: str | None = None) -> list[Exercise]:
    """Every exercise (of one lesson, ``"02"``, if given), in id order."""
    _load()
    found = [e for e in _registry.values() if lesson is None or e.lesson == lesson]
    return sorted(found, key=lambda e: tuple(int(part) for part in e.id.split(".")))


def get(exercise_id: str) -> Exercise:
    _load()
    if exercise_id not in _registry:
        known = ", ".join(e.id for e in exercises())
        raise ValueError(f"no exercise {exercise_id!r}; the exercises are {known}")
    return _registry[exercise_id]


def _factor() -> float:
    return float(os.environ.get(FACTOR_ENV) or 1)


async def _run_one(harness: Harness, check: Check, implementation: Any) -> tuple[Verdict, bool]:
    """Run one check; return its verdict and whether the learner's code is still stuck."""
    timeout = check.timeout * _factor()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            await check.run(harness, implementation)
        return Verdict(check.name, Status.PASSED), False
    except Exception as exc:
        error = exc
    if isinstance(error, TimeoutError) and deadline.expired():
        busy = await harness.busy()
        why = busy or "is your code waiting for something that never comes?"
        if busy is None and (slow := starting()):
            # Not the learner's code: the machine is too busy to start what the check needs.
            factor = f"{FACTOR_ENV}=3 gives every check three times as long"
            why = f"{', '.join(slow)} was still starting: a busy machine? {factor}"
        verdict = Verdict(check.name, Status.TIMED_OUT, f"no result within {timeout:g} s: {why}")
    else:
        # The check gave up by itself; was it waiting on a server the learner's code holds?
        busy = await harness.busy(threads=False)
        verdict = dataclasses.replace(failure(harness, error), check=check.name)
        if busy is not None:
            verdict = Verdict(check.name, Status.TIMED_OUT, busy)
    if any(isinstance(e, NotImplementedError) for e in harness.errors):
        verdict = Verdict(check.name, Status.NOT_IMPLEMENTED, "not implemented yet")
    return verdict, busy is not None


async def run(
    exercise_id: str,
    implementation: Any,
    verdicts: list[Verdict] | None = None,
    guarded: list[_references.Run] | None = None,
) -> Report:
    """Run every check of an exercise, in order, appending each verdict to ``verdicts``.

    ``guarded`` gets the run's references guard, for ``evaluate`` to release if it gives up.
    """
    exercise = get(exercise_id)
    verdicts = [] if verdicts is None else verdicts
    copied = _references.screen(implementation, map(_references.Reference, exercise.references))
    if copied is not None:
        verdicts.extend(Verdict(c.name, Status.FAILED, copied) for c in exercise.checks)
        return Report(exercise, verdicts)
    stuck = False
    stopping: list[threading.Thread] = []
    try:
        with _references.guard(exercise.references, implementation) as guard:
            if guarded is not None:
                guarded.append(guard)
            async with sharing():  # a browser, say: started once for all the checks
                for check in exercise.checks:
                    if stuck:
                        hint = "skipped: your code from the check before is still running"
                        verdicts.append(Verdict(check.name, Status.SKIPPED, hint))
                        continue
                    harness = Harness(exercise.id)
                    try:
                        verdict, stuck = await _run_one(harness, check, implementation)
                    finally:
                        stopper = harness.close()
                    if stopper is not None and not stuck:  # a stuck server cannot stop: don't wait
                        stopping.append(stopper)
                    if (used := guard.take()) is not None:
                        verdict = Verdict(check.name, Status.FAILED, used)
                    verdicts.append(verdict)
    finally:
        # Each server stops in its own thread (about 0.2 s each); wait for them all at once.
        def join_all() -> None:
            for thread in stopping:
                thread.join(7)

        await asyncio.to_thread(join_all)
    return Report(exercise, verdicts)


def evaluate(exercise_id: str, implementation: Any) -> Report:
    """Run the checks from synchronous code (a notebook cell, a test); never hangs.

    The checks run on an event loop of their own in a daemon thread, so this works whether or
    not the caller's thread has a loop running (Jupyter's does). ``clients.run_sync`` is not
    used: it joins its worker thread, which would wait forever on code that loops forever.
    """
    exercise = get(exercise_id)
    verdicts: list[Verdict] = []
    failure: list[BaseException] = []
    guarded: list[_references.Run] = []

    def target() -> None:
        _references.track_origins()  # this thread is the checks' own
        try:
            asyncio.run(run(exercise_id, implementation, verdicts, guarded))
        except BaseException as exc:  # reported below, in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"check-{exercise_id}", daemon=True)
    thread.start()
    thread.join(exercise.deadline)
    for guard in guarded:  # still stuck: the course's own functions must work from now on
        _references.release(guard)
    if failure:
        raise failure[0]
    done = list(verdicts)
    for check in exercise.checks[len(done) :]:
        hint = f"the checks did not finish within {exercise.deadline:g} s"
        done.append(Verdict(check.name, Status.TIMED_OUT, hint))
    return Report(exercise, done)


def record(report: Report) -> None:
    """Append the report to the file named by ``COURSE_CHECK_RESULTS``, if set."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as results:
            results.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")


def check(exercise_id: str, implementation: Any) -> None:
    """Run exercise ``exercise_id``'s checks against ``implementation`` and print the verdicts."""
    report = evaluate(exercise_id, implementation)
    record(report)
    print(report)
