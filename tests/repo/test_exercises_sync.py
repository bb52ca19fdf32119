"""exercises/ is made from solutions/ by scripts/make_exercises.py, and is never out of date."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, load_script

from course_server import checks

make_exercises = load_script("make_exercises")
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
CHECK_CALL = re.compile(r'^check\("(?P<id>\d\d\.\d+)", (?P<target>\w+)\)$')


def test_exercises_are_what_the_solutions_make() -> None:
    """Regenerated in memory and compared: run scripts/make_exercises.py if this fails."""
    assert make_exercises.out_of_date() == []


def test_there_are_solutions() -> None:
    assert SOLUTIONS


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_each_solutions_notebook_belongs_to_a_lesson(solution: Path) -> None:
    assert (ROOT / "notebooks" / solution.name).exists()


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_an_exercise_keeps_no_solution_and_no_output(solution: Path) -> None:
    exercise = nbformat.read(ROOT / "exercises" / solution.name, as_version=4)
    for cell in exercise.cells:
        assert "SOLUTION" not in cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.stem)
def test_each_exercise_of_the_lesson_is_checked_once_with_its_target(solution: Path) -> None:
    notebook = nbformat.read(solution, as_version=4)
    calls = [
        (match["id"], match["target"])
        for cell in notebook.cells
        if cell.cell_type == "code" and (match := CHECK_CALL.match(cell.source.strip()))
    ]
    lesson = solution.name[:2]
    assert calls == [(e.id, e.target) for e in checks.exercises(lesson)]


def test_a_solution_region_becomes_one_raise_at_its_indentation() -> None:
    source = (
        "def f(x):\n"
        '    """Doc."""\n'
        "    y = 1\n"
        "    # BEGIN SOLUTION\n"
        "    return x + y\n"
        "    # END SOLUTION\n"
    )
    assert make_exercises.strip_solutions(source) == (
        'def f(x):\n    """Doc."""\n    y = 1\n'
        '    raise NotImplementedError("write the body of f() here")\n'
    )


def test_a_marker_message_becomes_the_exceptions_message() -> None:
    source = (
        "async def g():\n    # BEGIN SOLUTION: loop over the clients\n    pass\n    # END SOLUTION"
    )
    stripped = make_exercises.strip_solutions(source)
    assert stripped == 'async def g():\n    raise NotImplementedError("loop over the clients")'


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "inside a function body"),
        ("def f():\n    # BEGIN SOLUTION\n    pass", "without an END"),
        ("def f():\n    pass\n    # END SOLUTION", "without a BEGIN"),
        ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n", "inside another"),
        ("def f():\n    # BEGIN SOLUTION\n    pass\n# END SOLUTION", "indented unlike"),
    ],
)
def test_markers_that_do_not_pair_up_are_refused(source: str, problem: str) -> None:
    with pytest.raises(make_exercises.MarkerError, match=problem):
        make_exercises.strip_solutions(source)


def test_the_check_option_reports_an_out_of_date_exercise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(make_exercises, "EXERCISES", tmp_path)
    monkeypatch.setattr(make_exercises, "ROOT", tmp_path.parent)
    (tmp_path / "99_orphan.ipynb").write_text("{}", encoding="utf-8")
    assert make_exercises.main(["--check"]) == 1
    report = capsys.readouterr().out
    assert "99_orphan.ipynb" in report
    assert all(f"{tmp_path.name}/{path.name}" in report for path in SOLUTIONS)
