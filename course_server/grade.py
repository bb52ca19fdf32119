"""Grade a class's exercise notebooks: ``python -m course_server.grade SUBMISSIONS_DIR``.

Submissions are exercise notebooks, named as in ``exercises/`` (``NN_name.ipynb``; the ``NN`` says
which lesson's exercises it holds), in either layout, or both mixed:

- a folder per learner: ``SUBMISSIONS_DIR/alice/02_websocket_basics.ipynb``;
- flat files, learner first: ``SUBMISSIONS_DIR/alice__02_websocket_basics.ipynb``.

Each notebook runs top to bottom in a fresh kernel (nbclient), in a temporary folder, with
``COURSE_CHECK_RESULTS`` naming a file that each ``check(...)`` call in it appends its verdict
to. A cell still running after ``--cell-timeout`` seconds is interrupted and the run goes on with
the next cell; a notebook still running after ``--timeout`` is stopped and its kernel shut down.
Errors in cells do not stop the run either, so one broken exercise costs only itself.

The table has a row per learner and exercise: ``pass``; ``fail``, ``timeout`` or ``not done``
(the code still raises ``NotImplementedError``) with the first check that did not pass; or
``not run`` when no ``check()`` call for it ran. ``--json FILE`` writes the same as JSON.

Submissions run with your permissions: grade work you do not trust in a container or a VM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from course_server import checks

LESSON = re.compile(r"^(?P<lesson>\d\d)_\w+\.ipynb$")


@dataclasses.dataclass(frozen=True)
class Submission:
    learner: str
    lesson: str
    path: Path


@dataclasses.dataclass(frozen=True)
class Grade:
    learner: str
    exercise: str
    result: str  # pass, fail, timeout, not done, not run
    check: str = ""  # the first check that did not pass


def find(folder: Path) -> tuple[list[Submission], list[Path]]:
    """The submissions under ``folder``, and the notebooks that fit neither layout."""
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
        if not learner or match is None or not checks.exercises(match["lesson"]):
            ignored.append(path)
            continue
        found.append(Submission(learner, match["lesson"], path))
    return found, ignored


def grades_from(
    records: list[dict[str, Any]], submission: Submission, stopped: bool = False, note: str = ""
) -> list[Grade]:
    """One grade per exercise of the lesson, from the last verdict recorded for each.

    An exercise with no verdict is ``timeout`` if the notebook was stopped, else ``not run``.
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
        result = {"not implemented": "not done", "timed out": "timeout"}.get(first["status"])
        grades.append(Grade(submission.learner, exercise.id, result or "fail", first["check"]))
    return grades


async def run(submission: Submission, cell_timeout: int, timeout: float) -> list[Grade]:
    """Execute one notebook in its own kernel; grade it from the verdicts its checks recorded."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="grade-") as workdir:
        results = Path(workdir) / "results.jsonl"
        stopped, note = False, ""
        try:
            notebook = nbformat.read(submission.path, as_version=4)
        except Exception as exc:  # not a notebook at all: nothing ran
            return grades_from([], submission, note=f"unreadable notebook: {exc}")
        client = NotebookClient(
            notebook,
            timeout=cell_timeout,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": "CellTimeoutError", "evalue": "interrupted by the grader"},
            allow_errors=True,
            kernel_name="python3",
            resources={"metadata": {"path": workdir}},
        )
        env = {**os.environ, checks.RESULTS_ENV: str(results)}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # kernels' chatter
        try:
            async with asyncio.timeout(timeout):
                await client.async_execute(env=env, **quiet)
        except TimeoutError:
            stopped, note = True, f"the notebook was stopped after {timeout:g} s"
        except Exception as exc:  # the kernel died, or could not start
            note = f"the run ended early: {type(exc).__name__}: {exc}"
        finally:
            if client.km is not None and await _alive(client):
                await client.km.shutdown_kernel(now=True)
        records = [json.loads(line) for line in _lines(results)]
    return grades_from(records, submission, stopped, note)


async def _alive(client: Any) -> bool:
    alive = client.km.is_alive()
    return bool(await alive if asyncio.iscoroutine(alive) else alive)


def _lines(path: Path) -> list[str]:
    return path.read_text("utf-8").splitlines() if path.exists() else []


async def grade_all(
    submissions: list[Submission], *, jobs: int, cell_timeout: int, timeout: float
) -> list[Grade]:
    """Grade every submission, ``jobs`` notebooks at a time, each in its own kernel."""
    slots = asyncio.Semaphore(jobs)

    async def one(submission: Submission) -> list[Grade]:
        async with slots:
            started = time.monotonic()
            grades = await run(submission, cell_timeout, timeout)
            took = time.monotonic() - started
            print(
                f"graded {submission.path.name} of {submission.learner} in {took:.1f} s",
                file=sys.stderr,
            )
            return grades

    graded = await asyncio.gather(*(one(s) for s in submissions))
    return sorted((g for grades in graded for g in grades), key=lambda g: (g.learner, g.exercise))


def table(grades: list[Grade]) -> str:
    """The grades as an aligned text table, then each learner's total."""
    rows = [("learner", "exercise", "result", "first check not passed")]
    rows += [(g.learner, g.exercise, g.result, g.check) for g in grades]
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
        f"{learner} {passed}/{total}" for learner, (passed, total) in totals.items()
    )
    return "\n".join([*lines, "", f"passed: {summary}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_server.grade", description=__doc__.splitlines()[0]
    )
    parser.add_argument("submissions", type=Path, help="a folder of learners' notebooks")
    parser.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per notebook")
    parser.add_argument(
        "--jobs", type=int, default=min(4, os.cpu_count() or 1), help="notebooks graded at once"
    )
    parser.add_argument("--json", type=Path, help="also write the grades to this file")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    submissions, ignored = find(args.submissions)
    for path in ignored:
        print(
            f"ignored {path}: not LEARNER/NN_name.ipynb nor LEARNER__NN_name.ipynb "
            "for a lesson with exercises",
            file=sys.stderr,
        )
    grades = asyncio.run(
        grade_all(submissions, jobs=args.jobs, cell_timeout=args.cell_timeout, timeout=args.timeout)
    )
    print(table(grades))
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(g) for g in grades], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
