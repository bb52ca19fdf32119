"""One submission's grading process: the learner's definitions in, the instructor's verdicts out.

Started by the grader (``python -m course_server.grading CHANNEL_FD``) in a temporary folder
holding a copy of the notebook; reads its orders as one JSON line on stdin (``nonce``,
``lesson``, ``notebook``, ``cell_timeout``), then:

1. loads the lesson's checks, takes a ``guard.Snapshot`` of the check machinery and refuses
   trace, profile and audit hooks from then on (``guard.refuse_hooks``);
2. runs the notebook's definitions (``extract``), cell by cell, each cell in a daemon thread so
   that a cell that never ends costs only itself (after ``cell_timeout`` the next cell starts);
3. for each exercise, calls ``checks.evaluate`` on the object the exercise names (``target``),
   all exercises at once; once all are done, compares the machinery with the snapshot and sends
   the reports on the channel, or a ``tampered`` message instead if anything changed.

It never runs a ``check(...)`` call of the notebook, and it ends with ``os._exit``: neither
``atexit`` handlers nor threads of the learner's code can hold it.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from course_server import checks
from course_server.grading import channel, extract, guard, sandbox

Send = Callable[[dict[str, Any]], None]
HINT_CHARS = 500


def _run_cell(cell: extract.Cell, namespace: dict[str, Any], timeout: float) -> str:
    """Run one cell's definitions; what went wrong, in a few words ("" if nothing did)."""
    problems: list[str] = []

    def target() -> None:
        for code in cell.code:
            try:
                exec(code, namespace)  # the point of the worker: run the learner's definitions
            except BaseException as exc:  # SystemExit too: one statement costs only itself
                problems.append(f"cell {cell.index} raised {type(exc).__name__}")

    thread = threading.Thread(target=target, name=f"cell-{cell.index}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        problems.append(f"cell {cell.index} still ran after {timeout:g} s")
    return "; ".join(problems)


def _checked(exercise: checks.Exercise, implementation: Any) -> dict[str, Any]:
    try:
        report = checks.evaluate(exercise.id, implementation)
    except Exception as exc:  # the checks themselves broke: no verdict, say why
        return {"kind": "error", "exercise": exercise.id, "error": f"{type(exc).__name__}: {exc}"}
    verdicts = report.to_json()
    for verdict in verdicts["checks"]:  # a hint quotes the learner's exception: keep it short
        verdict["hint"] = str(verdict["hint"])[:HINT_CHARS]
    return {"kind": "verdict", "exercise": exercise.id, "report": verdicts}


def _in_thread(function: Callable[[], dict[str, Any]]) -> Future[dict[str, Any]]:
    future: Future[dict[str, Any]] = Future()

    def target() -> None:
        try:
            future.set_result(function())
        except BaseException as exc:  # learner code may raise SystemExit through the checks
            future.set_exception(exc)

    threading.Thread(target=target, daemon=True).start()
    return future


def grade(notebook: str, lesson: str, cell_timeout: float, send: Send) -> None:
    """Run the notebook's definitions and the lesson's checks; send each verdict."""
    exercises = checks.exercises(lesson)
    before = guard.Snapshot.take()
    intact = guard.seal(guard, channel, sys.modules[__name__])
    guard.refuse_hooks()  # a trace or profile hook in a check's thread could rewrite its verdict
    compare = guard.Snapshot.changes

    def changes() -> list[str]:
        return compare(before) if intact() else ["the grader's own modules"]

    learner = types.ModuleType("submission")
    sys.modules["submission"] = learner  # pydantic and dataclasses look a class's module up
    notes = [_run_cell(cell, vars(learner), cell_timeout) for cell in extract.cells(notebook)]
    why = "; ".join(note for note in notes if note)
    changed = changes()
    if changed:
        send({"kind": "tampered", "changes": changed[:5]})
        return
    # The exercises of a lesson are checked at once: each check serves on a port of its own.
    running = {}
    for exercise in exercises:
        implementation = vars(learner).get(exercise.target)
        if implementation is None:
            continue
        running[exercise.id] = _in_thread(functools.partial(_checked, exercise, implementation))
    # Compared only once every exercise is done: while checks run, they may swap a reference
    # implementation's code for a tripwire (``checks.references``), and put it back after.
    messages = []
    for exercise in exercises:
        if exercise.id not in running:
            missing = {"kind": "missing", "exercise": exercise.id, "target": exercise.target}
            messages.append({**missing, "why": why})
            continue
        try:
            messages.append(running[exercise.id].result())
        except BaseException as exc:
            messages.append({"kind": "error", "exercise": exercise.id, "error": type(exc).__name__})
    changed = changes()
    if changed:
        send({"kind": "tampered", "changes": changed[:5]})
        return
    for message in messages:
        send(message)


def main() -> None:
    fd = int(sys.argv[1])
    orders = json.loads(sys.stdin.readline())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # the orders were all there is to read
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file too big fails its write, not us
    sandbox.Limits(**orders["limits"]).apply()
    send = channel.sealed_sender(fd, orders["nonce"])

    notebook = Path(orders["notebook"]).read_text("utf-8", errors="replace")
    try:
        grade(notebook, orders["lesson"], orders["cell_timeout"], send)
        send({"kind": "done"})
    finally:
        sys.stdout.flush()
        os._exit(0)
