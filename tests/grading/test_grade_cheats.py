"""The grader against cheating notebooks: none passes, none touches another, none outlives it.

One class, graded once with ``--jobs 2`` in the strongest isolation the machine has: ada hands
in the solution, bob the stubs, cy answers that loop forever, hog a definition that never lets
go of the interpreter, and one learner per cheat of ``benchmarks.grading`` (each built on the
stubs, so a ``pass`` is a cheat that worked). A second, smaller class is graded with
``--jobs 1`` and only a process group for isolation, the fallback without bubblewrap.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import ROOT

from benchmarks import grading as cheats
from course_server.grading import sandbox

EXERCISES = ("02.1", "02.2")
TIMEOUT = 30  # seconds per notebook: hog takes all of it; cy's stuck check about half
PEAK_MB = 250  # the grader's own memory, however much a notebook prints (it used to reach 464)
STRONG = sandbox.choose() is not sandbox.Isolation.GROUP
BWRAP = sandbox.choose() is sandbox.Isolation.BWRAP


def _peak_rss(pid: int) -> int:
    """The peak resident memory of ``pid`` so far, in bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def leftovers(marker: str, workdir: Path) -> list[str]:
    """Processes a class left (a cheat's ``sleep 30N.MARKER``, anything in its folders); each
    is killed, by its pid, once listed: a failing test leaves nothing behind either."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        command = " ".join(process.info["cmdline"] or [])
        cwd = process.info["cwd"] or ""
        if marker in command or str(workdir) in command or cwd.startswith(str(workdir)):
            found.append(f"{process.info['pid']}: {command}")
            with contextlib.suppress(psutil.Error):
                process.kill()
    return found


def grade(folder: Path, workdir: Path, *options: str) -> dict[str, Any]:
    """Run the grader on ``folder`` (its temporary folders under ``workdir``), watching its
    memory; its output, grades and peak memory."""
    output = workdir / "grades.json"
    command = [sys.executable, "-m", "course_server.grade", str(folder), "--json", str(output)]
    env = {**os.environ, "TMPDIR": str(workdir), cheats.SECRET_ENV: "the grader's secret"}
    grader = subprocess.Popen(
        [*command, "--timeout", str(TIMEOUT), *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    peak = [0]

    def watch() -> None:
        while grader.poll() is None:
            try:
                peak[0] = max(peak[0], _peak_rss(grader.pid))
            except (OSError, ValueError):
                return
            time.sleep(0.05)  # sampling a monotonic peak: no event to wait on

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = grader.communicate(timeout=240)
    watcher.join()
    grades = json.loads(output.read_text("utf-8")) if output.exists() else []
    return {
        "returncode": grader.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "peak": peak[0],
        "grades": {(g["learner"], g["exercise"]): (g["result"], g["check"]) for g in grades},
    }


@pytest.fixture(scope="module")
def marker() -> int:
    return 800000 + os.getpid() % 100000


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, marker: int) -> dict[str, Any]:
    folder = cheats.class_folder(tmp_path_factory.mktemp("strong"), marker)
    workdir = tmp_path_factory.mktemp("grader-tmp")
    solution = (ROOT / "solutions" / cheats.LESSON).read_bytes()
    ada = folder / "ada" / cheats.LESSON
    ada.parent.mkdir()
    ada.write_bytes(solution)
    cheats.write(folder, "bob", cheats.load("exercises"))
    cheats.write(folder, "cy", cheats.looping(marker))
    cheats.write(folder, "hog", cheats.never_yields(marker))
    for learner, build in cheats.CHEATS.items():
        cheats.write(folder, learner, build(marker))
    result = grade(folder, workdir, "--jobs", "2")
    result["ada unchanged"] = ada.read_bytes() == solution
    result["leftovers"] = leftovers(f".{marker}", workdir)
    leak = Path(f"/tmp/{cheats.LEAK_NAME}-{marker}")
    result["leaked"] = leak.exists()
    leak.unlink(missing_ok=True)
    return result


def results(graded: dict[str, Any], learner: str) -> set[str]:
    return {graded["grades"][learner, exercise][0] for exercise in EXERCISES}


def test_the_grader_exits_0_and_says_which_isolation_it_uses(graded: dict[str, Any]) -> None:
    assert graded["returncode"] == 0, graded["stderr"]
    assert f"isolation: {sandbox.choose()}" in graded["stderr"]


def test_a_solved_notebook_passes_among_cheats(graded: dict[str, Any]) -> None:
    assert results(graded, "ada") == {"pass"}


def test_the_stubs_are_not_done(graded: dict[str, Any]) -> None:
    assert results(graded, "bob") == {"not done"}


def test_a_forged_results_file_and_printed_verdicts_count_for_nothing(
    graded: dict[str, Any],
) -> None:
    assert results(graded, "forger") == {"not done"}


def test_replacing_evaluate_in_the_import_cell_counts_for_nothing(
    graded: dict[str, Any],
) -> None:
    assert results(graded, "patcher") == {"not done"}


def test_a_redefined_check_counts_for_nothing(graded: dict[str, Any]) -> None:
    assert results(graded, "redefiner") == {"not done"}


def test_replacing_evaluate_from_code_that_runs_is_tampered(graded: dict[str, Any]) -> None:
    assert results(graded, "tamperer") == {"tampered"}
    assert "evaluate" in graded["grades"]["tamperer", "02.1"][1]


def test_changing_the_checks_while_being_checked_is_tampered(graded: dict[str, Any]) -> None:
    assert results(graded, "meddler") == {"tampered"}


def test_silencing_the_change_detector_and_the_sender_is_tampered(
    graded: dict[str, Any],
) -> None:
    assert results(graded, "blindfold") == {"tampered"}


def test_a_profile_hook_the_checks_threads_inherit_is_tampered(graded: dict[str, Any]) -> None:
    assert results(graded, "profiler") == {"tampered"}
    assert "threading.setprofile" in graded["grades"]["profiler", "02.1"][1]


def test_a_garbage_collector_callback_is_tampered(graded: dict[str, Any]) -> None:
    assert results(graded, "collector") == {"tampered"}


def test_a_verdict_written_to_the_channel_without_the_nonce_is_tampered(
    graded: dict[str, Any],
) -> None:
    assert results(graded, "scribbler") == {"tampered"}


@pytest.mark.skipif(not STRONG, reason="only a process group here: a worker sees the machine")
def test_a_snoop_finds_neither_other_submissions_nor_the_graders_environment(
    graded: dict[str, Any],
) -> None:
    assert results(graded, "snoop") == {"not done"}


def test_a_notebook_rewritten_by_another_learner_is_graded_as_handed_in(
    graded: dict[str, Any],
) -> None:
    assert results(graded, "ada") == {"pass"}
    if STRONG:
        assert graded["ada unchanged"]


@pytest.mark.skipif(not BWRAP, reason="without bubblewrap a worker can write to /tmp")
def test_nothing_is_written_outside_the_submissions_folder(graded: dict[str, Any]) -> None:
    assert not graded["leaked"]


@pytest.mark.skipif(not STRONG, reason="setsid escapes a process group")
def test_nothing_a_notebook_started_outlives_grading(graded: dict[str, Any]) -> None:
    assert results(graded, "lingerer") == {"not done"}
    assert graded["leftovers"] == []


def test_printing_200_mb_leaves_the_graders_memory_bounded(graded: dict[str, Any]) -> None:
    assert results(graded, "printer") == {"not done"}
    assert 0 < graded["peak"] < PEAK_MB << 20


def test_a_notebook_that_ends_its_worker_is_not_run(graded: dict[str, Any]) -> None:
    assert results(graded, "quitter") == {"not run"}
    assert "ended early" in graded["grades"]["quitter", "02.1"][1]


def test_a_definition_that_never_lets_go_times_out(graded: dict[str, Any]) -> None:
    assert graded["grades"]["hog", "02.1"] == (
        "timeout",
        f"the worker was stopped after {TIMEOUT} s",
    )
    assert results(graded, "hog") == {"timeout"}


def test_an_infinite_loop_in_an_exercise_costs_only_that_exercise(
    graded: dict[str, Any],
) -> None:
    assert graded["grades"]["cy", "02.1"][0] == "timeout"
    assert graded["grades"]["cy", "02.2"] == ("pass", "")


# --- without bubblewrap: a process group, one job at a time ----------------------------------


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory, marker: int) -> dict[str, Any]:
    folder = cheats.class_folder(tmp_path_factory.mktemp("weak"), marker + 1)
    workdir = tmp_path_factory.mktemp("group-grader-tmp")
    solution = (ROOT / "solutions" / cheats.LESSON).read_bytes()
    (folder / "ada").mkdir()
    (folder / "ada" / cheats.LESSON).write_bytes(solution)
    child = cheats.with_cells(
        f"import subprocess\n\nCHILD = subprocess.Popen(['sleep', '301.{marker + 1}'])"
    )
    cheats.write(folder, "lingerer", child)
    rewriter = cheats.with_cells(
        "import pathlib\n\n\n"
        "def _rewrite():\n"
        f"    for path in pathlib.Path({str(folder)!r}).glob('*/*.ipynb'):\n"
        "        if 'rewriter' not in path.parts:\n"
        "            path.write_text('{}')\n\n\n"
        "_ = _rewrite()"
    )  # it knows where the class is: without bubblewrap, a worker can find that out
    cheats.write(folder, "rewriter", rewriter)
    for learner in ("forger", "tamperer", "printer"):
        cheats.write(folder, learner, cheats.CHEATS[learner](marker))
    result = grade(folder, workdir, "--jobs", "1", "--isolation", "group")
    result["leftovers"] = leftovers(f".{marker + 1}", workdir)
    return result


def test_a_process_group_is_named_as_the_isolation(grouped: dict[str, Any]) -> None:
    assert grouped["returncode"] == 0, grouped["stderr"]
    assert "isolation: group" in grouped["stderr"]


def test_in_a_process_group_cheats_do_not_pass_and_the_solution_does(
    grouped: dict[str, Any],
) -> None:
    assert results(grouped, "ada") == {"pass"}
    assert results(grouped, "forger") == {"not done"}
    assert results(grouped, "tamperer") == {"tampered"}
    assert results(grouped, "rewriter") == {"not done"}


def test_in_a_process_group_a_child_process_ends_with_grading(grouped: dict[str, Any]) -> None:
    assert results(grouped, "lingerer") == {"not done"}
    assert grouped["leftovers"] == []


def test_in_a_process_group_printing_leaves_the_graders_memory_bounded(
    grouped: dict[str, Any],
) -> None:
    assert results(grouped, "printer") == {"not done"}
    assert 0 < grouped["peak"] < PEAK_MB << 20
