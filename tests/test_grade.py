"""``python -m course_server.grade``: learners' notebooks in, a table of verdicts out.

One class of three, graded for real (a worker process per notebook): ada handed in the solution,
bob the exercise as he got it, and cy a notebook with two infinite loops, one in a cell of its own
and one in an exercise's endpoint, which never gives the event loop back. Then every solution
notebook, which must pass every exercise (``tests/grading/test_grade_cheats.py``: the cheats).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import ROOT

from course_server import checks, grade

NOTEBOOK = "02_websocket_basics.ipynb"
BROKEN_GUESS = """\
async def guess(websocket: WebSocket, secret: int) -> None:
    while True:  # waits for nothing: the server's event loop never gets control back
        pass
"""


def write_class(folder: Path) -> None:
    """Both layouts: a folder per learner (ada, cy) and a learner__ prefix (bob)."""
    (folder / "ada").mkdir()
    (folder / "ada" / NOTEBOOK).write_bytes((ROOT / "solutions" / NOTEBOOK).read_bytes())
    (folder / f"bob__{NOTEBOOK}").write_bytes((ROOT / "exercises" / NOTEBOOK).read_bytes())
    broken = nbformat.read(ROOT / "solutions" / NOTEBOOK, as_version=4)
    for cell in broken.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("MAX_WRONG"):
            cell.source = BROKEN_GUESS
    broken.cells.insert(2, nbformat.v4.new_code_cell("while True:\n    pass"))
    (folder / "cy").mkdir()
    nbformat.write(broken, folder / "cy" / NOTEBOOK)
    (folder / "notes.ipynb").write_bytes(b"{}")  # fits neither layout: ignored


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("submissions")
    write_class(folder)
    output = folder.parent / "grades.json"
    command = [sys.executable, "-m", "course_server.grade", str(folder), "--json", str(output)]
    options = ["--cell-timeout", "8", "--timeout", "45", "--jobs", "3"]
    done = subprocess.run(
        [*command, *options], capture_output=True, text=True, timeout=120, check=False
    )
    grades = json.loads(output.read_text("utf-8"))
    return {
        "done": done,
        "grades": {(g["learner"], g["exercise"]): (g["result"], g["check"]) for g in grades},
    }


def first_check(exercise_id: str) -> str:
    return checks.get(exercise_id).checks[0].name


def test_the_grader_exits_0(graded: dict[str, Any]) -> None:
    assert graded["done"].returncode == 0, graded["done"].stderr


def test_every_learner_gets_every_exercise_of_the_lesson(graded: dict[str, Any]) -> None:
    assert set(graded["grades"]) == {
        (learner, exercise) for learner in ("ada", "bob", "cy") for exercise in ("02.1", "02.2")
    }


def test_a_solved_notebook_passes(graded: dict[str, Any]) -> None:
    assert graded["grades"]["ada", "02.1"] == ("pass", "")
    assert graded["grades"]["ada", "02.2"] == ("pass", "")


def test_an_untouched_exercise_notebook_is_not_done(graded: dict[str, Any]) -> None:
    assert graded["grades"]["bob", "02.1"] == ("not done", first_check("02.1"))
    assert graded["grades"]["bob", "02.2"] == ("not done", first_check("02.2"))


def test_an_infinite_loop_costs_only_its_own_exercise(graded: dict[str, Any]) -> None:
    assert graded["grades"]["cy", "02.1"] == ("timeout", first_check("02.1"))
    assert graded["grades"]["cy", "02.2"] == ("pass", "")


def test_the_table_has_a_row_per_learner_and_exercise_and_the_totals(
    graded: dict[str, Any],
) -> None:
    lines = graded["done"].stdout.splitlines()
    assert lines[0].split() == ["learner", "exercise", "result", "first", "check", "not", "passed"]
    assert lines[1].split() == ["ada", "02.1", "pass"]
    assert lines[3].split()[:4] == ["bob", "02.1", "not", "done"]
    assert lines[-1] == "passed: ada 2/2, bob 0/2, cy 1/2"


def test_a_notebook_that_fits_no_layout_is_named_and_ignored(graded: dict[str, Any]) -> None:
    assert "ignored" in graded["done"].stderr and "notes.ipynb" in graded["done"].stderr


def test_an_exercise_with_no_verdict_is_not_run_or_timed_out() -> None:
    submission = grade.Submission("dee", "02", Path("dee") / NOTEBOOK)
    passed = {"exercise": "02.2", "passed": True, "checks": [{"check": "x", "status": "passed"}]}
    assert [g.result for g in grade.grades_from([passed], submission)] == ["not run", "pass"]
    stopped = grade.grades_from([], submission, stopped=True, note="stopped")
    assert [(g.result, g.check) for g in stopped] == [("timeout", "stopped")] * 2


def test_the_last_verdict_of_an_exercise_counts() -> None:
    submission = grade.Submission("dee", "02", Path("dee") / NOTEBOOK)
    failed = {
        "exercise": "02.1",
        "passed": False,
        "checks": [{"check": "a", "status": "passed"}, {"check": "b", "status": "failed"}],
    }
    passed = {"exercise": "02.1", "passed": True, "checks": [{"check": "a", "status": "passed"}]}
    assert grade.grades_from([failed], submission)[0].result == "fail"
    assert grade.grades_from([failed], submission)[0].check == "b"
    assert grade.grades_from([failed, passed], submission)[0].result == "pass"


def test_a_symlinked_notebook_is_ignored_not_graded_as_the_file_it_points_to(
    tmp_path: Path,
) -> None:
    # A learner's zip unpacked with its symlinks: mallory "hands in" the instructor's solution.
    (tmp_path / "mallory").mkdir()
    (tmp_path / "mallory" / NOTEBOOK).symlink_to(ROOT / "solutions" / NOTEBOOK)
    (tmp_path / f"eve__{NOTEBOOK}").symlink_to(ROOT / "solutions" / NOTEBOOK)
    (tmp_path / "ada").mkdir()
    (tmp_path / "ada" / NOTEBOOK).write_bytes(b"{}")
    found, ignored = grade.find(tmp_path)
    assert [entry.learner for entry in found] == ["ada"]
    assert sorted(path.name for path in ignored) == sorted([f"eve__{NOTEBOOK}", NOTEBOOK])


def test_a_notebook_swapped_for_a_symlink_after_it_was_found_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / NOTEBOOK
    path.symlink_to(ROOT / "solutions" / NOTEBOOK)
    why = grade.read(grade.Submission("mallory", "02", path))
    assert isinstance(why, str) and why.startswith("the notebook could not be read")


def test_a_folder_or_a_fifo_named_like_a_notebook_is_ignored(tmp_path: Path) -> None:
    # From a learner's tar: a folder made the grader crash reading it, a FIFO made it wait forever.
    (tmp_path / "mallory" / NOTEBOOK).mkdir(parents=True)
    (tmp_path / "eve").mkdir()
    os.mkfifo(tmp_path / "eve" / NOTEBOOK)
    found, ignored = grade.find(tmp_path)
    assert found == []
    assert len(ignored) == 2


def test_a_notebook_swapped_for_a_fifo_after_it_was_found_is_not_waited_for(
    tmp_path: Path,
) -> None:
    path = tmp_path / NOTEBOOK
    os.mkfifo(path)
    why = grade.read(grade.Submission("eve", "02", path))  # returns at once: nothing writes
    assert why == "the notebook is not a file"


def test_what_a_notebook_printed_reaches_the_table_with_its_control_characters_escaped() -> None:
    # The last line a worker printed before it ended is quoted in the table: an escape sequence
    # in it could move a terminal's cursor up and rewrite another learner's rows.
    submission = grade.Submission("zed", "02", Path("zed") / NOTEBOOK)
    rewrite = "\x1b[3A\x1b[2Kada  02.1  fail\u202e"
    outcome = grade.submission.Outcome([], returncode=0, output=f"{rewrite}\n")
    printed = grade.table(grade.grades_of(outcome, submission, timeout=60))
    assert "\x1b" not in printed and "\u202e" not in printed
    assert "\\x1b[3A\\x1b[2Kada  02.1  fail\\u202e" in printed


def test_a_learner_name_reaches_the_table_with_its_control_characters_escaped() -> None:
    printed = grade.table([grade.Grade("zed\x1b[1A\n", "02.1", "not done", "")])
    assert printed.splitlines()[1].startswith("zed\\x1b[1A\\n  02.1")


# What exercise notebooks handed out before the package had subpackages import.
OLD_FEED_IMPORT = "from course_server.feed import Feed, Poll"


@pytest.fixture(scope="module")
def solutions(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """Every solution notebook, graded as one learner's hand-in, and lesson 01's with old imports.

    Keys are (learner, exercise); values the result.
    """
    folder = tmp_path_factory.mktemp("solutions")
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        (folder / f"sol__{path.name}").write_bytes(path.read_bytes())
    lesson01 = nbformat.read(ROOT / "solutions" / "01_polling_vs_websockets.ipynb", as_version=4)
    for cell in lesson01.cells:
        cell.source = cell.source.replace(
            "from course_server.lessons.feed import", "from course_server.feed import"
        )
    assert any(OLD_FEED_IMPORT in cell.source for cell in lesson01.cells)
    nbformat.write(lesson01, folder / "old__01_polling_vs_websockets.ipynb")
    output = folder.parent / "solution-grades.json"
    command = [sys.executable, "-m", "course_server.grade", str(folder), "--json", str(output)]
    subprocess.run([*command, "--jobs", "2"], capture_output=True, timeout=300, check=True)
    grades = json.loads(output.read_text("utf-8"))
    return {(g["learner"], g["exercise"]): g["result"] for g in grades}


def test_every_solution_passes_every_exercise_when_graded(
    solutions: dict[tuple[str, str], str],
) -> None:
    mine = {
        exercise: result for (learner, exercise), result in solutions.items() if learner == "sol"
    }
    assert set(mine) == {e.id for e in checks.exercises()}
    assert set(mine.values()) == {"pass"}, mine


def test_a_notebook_importing_from_before_the_package_redesign_still_passes(
    solutions: dict[tuple[str, str], str],
) -> None:
    old = {
        exercise: result for (learner, exercise), result in solutions.items() if learner == "old"
    }
    assert old and set(old.values()) == {"pass"}, old
