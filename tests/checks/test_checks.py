"""The exercise checks can fail: each solution passes them all; its stub and its mutants do not.

The solutions and stubs are the code of ``solutions/`` and ``exercises/`` themselves, run as the
notebooks run them (every code cell but the ``check(...)`` calls). The mutants are in
``mutants/``, one module per lesson. Every exercise is evaluated as a learner's ``check()`` call
would, concurrently (each check has its own server on its own port), once per module.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from exercise_reports import TIMEOUT, implementations
from mutants import MUTANTS

from course_server import checks
from course_server.checks import Report, Status
from course_server.clients.websocket import Attempt

EXERCISES = checks.exercises()
IDS = [exercise.id for exercise in EXERCISES]
pytestmark = pytest.mark.timeout(TIMEOUT)


@pytest.fixture
def reports(exercise_reports: dict[tuple[str, str], Report]) -> dict[tuple[str, str], Report]:
    return exercise_reports


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_solution_passes_every_check(
    reports: dict[tuple[str, str], Report], exercise_id: str
) -> None:
    report = reports[exercise_id, "solution"]
    assert report.passed, str(report)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_stub_fails_every_check_as_not_implemented(
    reports: dict[tuple[str, str], Report], exercise_id: str
) -> None:
    report = reports[exercise_id, "stub"]
    assert {v.status for v in report.verdicts} == {Status.NOT_IMPLEMENTED}, str(report)
    assert len(report.verdicts) == len(report.exercise.checks)


@pytest.mark.parametrize(
    ("exercise_id", "bug"), [(e, bug) for e in IDS for bug in MUTANTS.get(e, {})]
)
def test_a_mutant_fails_some_check(
    reports: dict[tuple[str, str], Report], exercise_id: str, bug: str
) -> None:
    report = reports[exercise_id, bug]
    assert not report.passed, f"{bug!r} passed every check of {exercise_id}"


@pytest.mark.parametrize(
    ("exercise_id", "bug"),
    [(e, bug) for e in IDS for bug in MUTANTS.get(e, {}) if bug.startswith("cheat: calls the")],
)
def test_a_cheat_that_uses_the_courses_reference_is_told_so(
    reports: dict[tuple[str, str], Report], exercise_id: str, bug: str
) -> None:
    report = reports[exercise_id, bug]
    assert all("the course's own" in v.hint for v in report.verdicts), str(report)


def test_every_exercise_has_a_mutant_and_every_mutant_an_exercise() -> None:
    assert set(MUTANTS) == set(IDS)


def test_every_lesson_with_a_solutions_notebook_has_exercises() -> None:
    lessons = {path.name[:2] for path in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")}
    assert lessons == {exercise.lesson for exercise in EXERCISES}


def test_check_prints_one_line_per_check_and_records_the_verdicts(
    reports: dict[tuple[str, str], Report],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(checks.RESULTS_ENV, str(results))
    stub = implementations()["04.2", "stub"]  # fast: its checks fail without waiting
    checks.check("04.2", stub)
    lines = capsys.readouterr().out.splitlines()
    exercise = checks.get("04.2")
    assert lines[0] == f"Exercise 04.2 · {exercise.title}"
    assert lines[1:-1] == [f"✗ {c.name} — not implemented yet" for c in exercise.checks]
    (recorded,) = [json.loads(line) for line in results.read_text("utf-8").splitlines()]
    assert recorded["exercise"] == "04.2"
    assert recorded["passed"] is False
    assert [c["status"] for c in recorded["checks"]] == ["not implemented"] * len(exercise.checks)


def test_a_passing_report_says_so() -> None:
    exercise = checks.get("02.1")
    verdicts = [checks.Verdict(c.name, Status.PASSED) for c in exercise.checks]
    text = str(Report(exercise, verdicts))
    assert text.splitlines()[1:] == [
        *(f"✓ {c.name}" for c in exercise.checks),
        f"All {len(exercise.checks)} checks passed.",
    ]


def test_code_that_never_yields_the_event_loop_times_out_and_skips_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loop with no ``await`` in it blocks the server: one check waits, the others are skipped."""
    monkeypatch.setenv(checks.FACTOR_ENV, "0.3")
    release = threading.Event()

    def catch_up(history: Any, last_id: int) -> Any:
        while not release.is_set():  # the learner's loop with no way out, until the test ends
            pass
        return True, []

    try:
        report = checks.evaluate("04.1", catch_up)
    finally:
        release.set()
    first, *rest = report.verdicts
    assert first.status is Status.TIMED_OUT
    assert "never gave the event loop back" in first.hint
    assert rest and {v.status for v in rest} == {Status.SKIPPED}


def test_expect_equal_says_what_was_expected_and_what_came_back() -> None:
    checks.expect_equal("higher", "higher", "the reply to 3")
    with pytest.raises(checks.CheckFailed) as failed:
        checks.expect_equal("lower", "higher", "the reply to 3")
    assert str(failed.value) == "the reply to 3: expected 'higher', got 'lower'"


def test_expect_equal_cuts_a_long_value_short() -> None:
    with pytest.raises(checks.CheckFailed) as failed:
        checks.expect_equal("x" * 500, "y", "the echo")
    assert len(str(failed.value)) < 120
    assert str(failed.value).endswith("…")


def test_expect_close_compares_the_code_and_the_named_reason() -> None:
    closed = Attempt(True, 101, close_code=1000, close_reason="Correct")
    checks.expect_close(closed, 1000)
    checks.expect_close(closed, 1000, "Correct")
    with pytest.raises(checks.CheckFailed) as failed:
        checks.expect_close(closed, 4000, "Out of guesses", "after 5 wrong guesses")
    assert str(failed.value) == (
        "after 5 wrong guesses: expected close 4000 'Out of guesses', got close 1000 'Correct'"
    )
    with pytest.raises(checks.CheckFailed, match="expected close 1000 'Right', got close 1000"):
        checks.expect_close(closed, 1000, "Right")


def test_expect_close_says_when_the_connection_never_closed() -> None:
    with pytest.raises(checks.CheckFailed, match=r"got no close \(the connection is still open\)"):
        checks.expect_close(Attempt(True, 101), 4408)


def test_expect_close_says_when_the_handshake_was_refused() -> None:
    with pytest.raises(checks.CheckFailed, match=r"expected close 4001, got a refused handshake"):
        checks.expect_close(Attempt(False, 403), 4001)


def test_an_unknown_exercise_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"no exercise '99\.9'.*02\.1"):
        checks.get("99.9")
