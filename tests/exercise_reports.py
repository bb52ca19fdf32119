"""Every exercise's reports, evaluated once per session: solutions, stubs and every mutant.

``exercise_reports[exercise_id, key]``: ``key`` is ``"solution"``, ``"stub"`` or a mutant's bug.
``test_checks.py`` asserts on all of them and each ``test_checks_lessonNN_MM.py`` names the check
that rejects its lesson's mutants, from the same reports: each implementation is checked once.
Registered in ``conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nbformat
import pytest
from conftest import ROOT
from mutants import MUTANTS

from course_server import checks
from course_server.checks import Report

TIMEOUT = 900
"""Seconds for a test that evaluates them all (~300 implementations, 8 at a time)."""


def notebook_namespace(folder: str, lesson: str) -> dict[str, Any]:
    """The names a lesson's notebook in ``folder`` defines, its ``check(...)`` cells skipped."""
    (path,) = (ROOT / folder).glob(f"{lesson}_*.ipynb")
    namespace: dict[str, Any] = {"__name__": f"{folder}_{lesson}"}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and not cell.source.startswith("check("):
            # dont_inherit: this module's ``from __future__ import annotations`` is not the
            # notebook's, and pydantic could not resolve the notebook's annotations under it.
            exec(compile(cell.source, str(path), "exec", dont_inherit=True), namespace)
    return namespace


def implementations() -> dict[tuple[str, str], Any]:
    """(exercise id, "solution" / "stub" / a mutant's bug) → the implementation to check."""
    jobs: dict[tuple[str, str], Any] = {}
    for exercise in checks.exercises():
        solved = notebook_namespace("solutions", exercise.lesson)
        jobs[exercise.id, "solution"] = solved[exercise.target]
        jobs[exercise.id, "stub"] = notebook_namespace("exercises", exercise.lesson)[
            exercise.target
        ]
        for bug, mutant in MUTANTS.get(exercise.id, {}).items():
            jobs[exercise.id, bug] = mutant
    return jobs


@pytest.fixture(scope="session")
def exercise_reports() -> dict[tuple[str, str], Report]:
    """Every job's report, eight jobs at a time.

    Most of a job is waiting (for a message, or to see that one does not come), so eight at a
    time fit on two cores without slowing the checks that measure how long an answer takes.
    """
    jobs = implementations()
    with ThreadPoolExecutor(8) as pool:
        futures = {key: pool.submit(checks.evaluate, key[0], impl) for key, impl in jobs.items()}
        return {key: future.result() for key, future in futures.items()}
