"""Grade a class's exercise notebooks: ``python -m course_server.grade SUBMISSIONS_DIR``.

Submissions are exercise notebooks, named as in ``exercises/`` (``NN_name.ipynb``; the ``NN`` says
which lesson's exercises it holds), in either layout, or both mixed:

- a folder per learner: ``SUBMISSIONS_DIR/alice/02_websocket_basics.ipynb``;
- flat files, learner first: ``SUBMISSIONS_DIR/alice__02_websocket_basics.ipynb``.

Only regular files are graded: a symbolic link unpacked from a learner's archive could point at
the instructor's solutions or at another learner's notebook, and a FIFO would never end.

The grader runs the instructor's checks on the learner's code, never the notebook's own
``check()`` calls: every notebook is read first, then each runs in a fresh worker process
(``course_server.grading``) in a temporary folder holding only a copy of it, with a scrubbed
environment and resource limits, isolated by bubblewrap where the machine has it. The worker
keeps the notebook's definitions (imports, ``def``, ``class``, ``NAME = ...``), runs each
exercise's checks on the object the exercise names, and sends the verdicts back on a channel of
its own. A cell whose definitions still run after ``--cell-timeout`` seconds is left behind; a
worker still running after ``--timeout`` is stopped, with all it started.

The table has a row per learner and exercise: ``pass``; ``fail``, ``timeout`` or ``not done``
(the code still raises ``NotImplementedError``) with the first check that did not pass;
``not run`` when the notebook defines no object for the exercise or the worker ended early;
``tampered`` when the learner's code changed the checks or forged a verdict. ``--json FILE``
writes the same as JSON. Isolation is not a VM: grade a hostile class in a container or a VM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

from course_server import checks
from course_server.grading import sandbox, submission

LESSON = re.compile(r"^(?P<lesson>\d\d)_\w+\.ipynb$")
MAX_NOTEBOOK_BYTES = 16 << 20
STATUSES = {str(status) for status in checks.Status}


@dataclasses.dataclass(frozen=True)
class Submission:
    learner: str
    lesson: str
    path: Path


@dataclasses.dataclass(frozen=True)
class Grade:
    learner: str
    exercise: str
    result: str  # pass, fail, timeout, not done, not run, tampered
    check: str = ""  # the first check that did not pass, or why there is no verdict


def _regular(path: Path) -> bool:
    """Is ``path`` a regular file itself, not a symbolic link to one?"""
    return not path.is_symlink() and path.is_file()


def find(folder: Path) -> tuple[list[Submission], list[Path]]:
    """The submissions under ``folder``, and the notebooks that fit neither layout or are not
    regular files (symbolic links, folders, FIFOs)."""
    found, ignored = [], []
    for path in sorted(folder.rglob("*.ipynb")):
        relative = path.relative_to(folder)
        if ".ipynb_checkpoints" in relative.parts:
            continue
        if len(relative.parts) > 1:
            learner, name = relative.parts[0], path.name
        else:
            learner, _, name = path.name.rpartition("__")
        match = LESSON.match(name)
        # A symlink is not a notebook handed in: unpacked from a learner's archive, it could
        # point at the instructor's solutions or another learner's work, and be graded as theirs.
        # Nor is a folder or a FIFO named like one (the grader would crash, or wait forever).
        if (
            not _regular(path)
            or not learner
            or match is None
            or not checks.exercises(match["lesson"])
        ):
            ignored.append(path)
            continue
        found.append(Submission(learner, match["lesson"], path))
    return found, ignored


def grades_from(
    records: list[dict[str, Any]], submission: Submission, stopped: bool = False, note: str = ""
) -> list[Grade]:
    """One grade per exercise of the lesson, from the last verdict recorded for each.

    An exercise with no verdict is ``timeout`` if the worker was stopped, else ``not run``.
    """
    last = {record["exercise"]: record for record in records}
    grades = []
    for exercise in checks.exercises(submission.lesson):
        record = last.get(exercise.id)
        if record is None:
            result = "timeout" if stopped else "not run"
            grades.append(Grade(submission.learner, exercise.id, result, note))
            continue
        failed = [c for c in record["checks"] if c["status"] != "passed"]
        if record["passed"] and not failed:
            grades.append(Grade(submission.learner, exercise.id, "pass"))
            continue
        first = failed[0] if failed else {"check": "(a check did not run)", "status": "failed"}
        named = {"not implemented": "not done", "timed out": "timeout"}.get(first["status"])
        grades.append(Grade(submission.learner, exercise.id, named or "fail", first["check"]))
    return grades


def _fits(report: Any, exercise: checks.Exercise) -> bool:
    """Is ``report`` a verdict of every check of ``exercise``, in order? (Then its ``passed``
    is recomputed, not read.)"""
    if not isinstance(report, dict) or not isinstance(report.get("checks"), list):
        return False
    verdicts = report["checks"]
    names = [c.name for c in exercise.checks]
    return len(verdicts) == len(names) and all(
        isinstance(v, dict) and v.get("check") == name and v.get("status") in STATUSES
        for v, name in zip(verdicts, names, strict=True)
    )


def _tampered(submission: Submission, why: str) -> list[Grade]:
    return [
        Grade(submission.learner, e.id, "tampered", why)
        for e in checks.exercises(submission.lesson)
    ]


def grades_of(outcome: submission.Outcome, entry: Submission, timeout: float) -> list[Grade]:
    """The grades of one submission from what its worker sent (anything unexpected: tampered)."""
    if outcome.forged:
        return _tampered(entry, f"forged verdicts: {outcome.forged}")
    exercises = checks.exercises(entry.lesson)
    records, absent, done = [], {}, False
    for index, message in enumerate(outcome.messages):
        kind = message.get("kind")
        if kind == "tampered":
            changes = message.get("changes") or ["?"]
            return _tampered(entry, f"changed {changes[0]}")
        expected = exercises[index].id if index < len(exercises) else None
        if kind == "done" and index == len(exercises):
            done = True
            continue
        if done or message.get("exercise") != expected or expected is None:
            return _tampered(entry, "an unexpected message from the worker")
        if kind == "verdict" and _fits(message.get("report"), exercises[index]):
            report = message["report"]
            passed = all(c["status"] == "passed" for c in report["checks"])
            records.append({**report, "passed": passed})
        elif kind == "missing":
            why = f"; {message['why']}" if message.get("why") else ""
            absent[expected] = f"no `{exercises[index].target}` in the notebook{why}"
        elif kind == "error":
            absent[expected] = f"the checks broke: {message.get('error')}"
        else:
            return _tampered(entry, "a verdict that does not fit the exercise's checks")
    if outcome.stopped:
        note = f"the worker was stopped after {timeout:g} s"
    elif not done:
        last = outcome.output.strip().splitlines()[-1:] or [""]
        said = f": {last[0][:80]}" if last[0] else ""
        note = f"the worker ended early (exit code {outcome.returncode}){said}"
    else:
        note = ""
    grades = grades_from(records, entry, outcome.stopped, note)
    return [
        dataclasses.replace(g, result="not run", check=absent[g.exercise])
        if g.exercise in absent
        else g
        for g in grades
    ]


def read(entry: Submission) -> bytes | str:
    """The notebook's bytes, or why it is not graded (too big to be one, or not a file)."""
    try:
        # O_NOFOLLOW: a notebook swapped for a symlink since ``find`` is not followed either;
        # O_NONBLOCK: nor does one swapped for a FIFO keep the grader waiting for a writer.
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return f"the notebook could not be read: {exc.strerror}"
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return "the notebook is not a file"
    with open(fd, "rb") as file:
        data = file.read(MAX_NOTEBOOK_BYTES + 1)
    return (
        f"the notebook is more than {MAX_NOTEBOOK_BYTES >> 20} MB"
        if len(data) > MAX_NOTEBOOK_BYTES
        else data
    )


async def grade_all(
    submissions: list[Submission],
    *,
    jobs: int,
    cell_timeout: float,
    timeout: float,
    isolation: sandbox.Isolation,
    limits: sandbox.Limits | None = None,
) -> list[Grade]:
    """Grade every submission, ``jobs`` workers at a time.

    Every notebook is read before the first worker starts: a submission that finds the others
    on disk and rewrites them changes nothing that is graded.
    """
    limits = limits or sandbox.Limits(cpu_seconds=int(timeout) + 5)
    notebooks = [read(entry) for entry in submissions]
    slots: asyncio.Queue[int] = asyncio.Queue()
    for slot in range(jobs):
        slots.put_nowait(slot)

    async def one(entry: Submission, notebook: bytes | str) -> list[Grade]:
        if isinstance(notebook, str):
            return grades_from([], entry, note=notebook)
        slot = await slots.get()
        try:
            started = time.monotonic()
            outcome = await asyncio.to_thread(
                submission.run, notebook, entry.path.name, entry.lesson, isolation=isolation,
                limits=limits, timeout=timeout, cell_timeout=cell_timeout, slot=slot,
            )  # fmt: skip
            took = time.monotonic() - started
        finally:
            slots.put_nowait(slot)
        name, learner = shown(entry.path.name), shown(entry.learner)
        print(f"graded {name} of {learner} in {took:.1f} s", file=sys.stderr)
        return grades_of(outcome, entry, timeout)

    graded = await asyncio.gather(*(one(s, n) for s, n in zip(submissions, notebooks, strict=True)))
    return sorted((g for grades in graded for g in grades), key=lambda g: (g.learner, g.exercise))


def shown(text: str) -> str:
    """``text`` with every character a terminal would act on escaped (``\\x1b``, ``\\u202e``).

    Learners choose some of what the grader prints: their folder's name, the last line their
    worker printed, an exception's name. An escape sequence in it could move the cursor up and
    rewrite another learner's rows, and a newline could add rows of its own.
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def table(grades: list[Grade]) -> str:
    """The grades as an aligned text table, then each learner's total."""
    rows = [("learner", "exercise", "result", "first check not passed")]
    rows += [(shown(g.learner), g.exercise, g.result, shown(g.check)) for g in grades]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    totals: dict[str, list[int]] = {}
    for g in grades:
        count = totals.setdefault(g.learner, [0, 0])
        count[0] += g.result == "pass"
        count[1] += 1
    summary = ", ".join(
        f"{shown(learner)} {passed}/{total}" for learner, (passed, total) in totals.items()
    )
    return "\n".join([*lines, "", f"passed: {summary}"])


ISOLATION = {
    sandbox.Isolation.BWRAP: "bubblewrap (own filesystem view, no network, PID namespace)",
    sandbox.Isolation.UID: "an unprivileged user per job (no bubblewrap)",
    sandbox.Isolation.GROUP: "a process group only (no bubblewrap, not root): weak",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_server.grade", description=__doc__.splitlines()[0]
    )
    parser.add_argument("submissions", type=Path, help="a folder of learners' notebooks")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per notebook")
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="notebooks graded at once"
    )
    parser.add_argument("--json", type=Path, help="also write the grades to this file")
    parser.add_argument(
        "--isolation",
        choices=["auto", *sandbox.Isolation],
        default="auto",
        help="how to isolate each worker (auto: the strongest that works here)",
    )
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    submissions, ignored = find(args.submissions)
    for path in ignored:
        why = (
            "not LEARNER/NN_name.ipynb nor LEARNER__NN_name.ipynb for a lesson with exercises"
            if _regular(path)
            else "not a regular file (a symbolic link, a folder, a FIFO...)"
        )
        print(f"ignored {shown(str(path))}: {why}", file=sys.stderr)
    isolation = sandbox.choose(args.isolation)
    if args.isolation != "auto" and not sandbox.works(isolation):
        parser.error(f"--isolation {isolation} does not work on this machine")
    print(f"isolation: {isolation} — {ISOLATION[isolation]}", file=sys.stderr)
    grades = asyncio.run(
        grade_all(
            submissions,
            jobs=max(1, args.jobs),
            cell_timeout=args.cell_timeout,
            timeout=args.timeout,
            isolation=isolation,
        )
    )
    print(table(grades))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(g) for g in grades], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
