"""How long grading a class takes: ``python -m benchmarks.grading [--learners 30] [--jobs 2]``.

Builds a class folder of exercise notebooks (right: the solutions; wrong: the exercises as
handed out and answers that never give the event loop back; cheating: the notebooks below),
grades it with ``python -m course_server.grade`` and prints the wall-clock time and the table.

The cheating notebooks are also what ``tests/grading/test_grade_cheats.py`` grades. Each starts from
lesson 02's exercise notebook (stubs that raise ``NotImplementedError``), so a ``pass`` for any
of them is a cheat that worked. ``marker`` is a number unique to one class: processes a cheat
leaves behind run ``sleep 30N.MARKER`` (five minutes at most), so a test can look for them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LESSON = "02_websocket_basics.ipynb"
SECRET_ENV = "GRADER_TEST_SECRET"
"""A variable set in the grader's environment: a cheat that can read it passes."""
LEAK_NAME = "grade-leak"
"""The file a cheat tries to write in /tmp, outside its own folder."""
CLASS_NAME = "grading-class"
"""A class folder is ``CLASS_NAME-MARKER``: the only notebooks a cheat ever rewrites are in one,
so a cheat graded without isolation cannot damage anything but its own class."""


def class_folder(parent: Path, marker: int) -> Path:
    """The folder for a class of cheats with this ``marker`` (made, empty)."""
    folder = parent / f"{CLASS_NAME}-{marker}"
    folder.mkdir(parents=True)
    return folder


def load(folder: str, name: str = LESSON) -> Any:
    return nbformat.read(ROOT / folder / name, as_version=4)


def _solution_of(target: str) -> str:
    """The solution cell that defines ``target`` in lesson 02's solutions notebook."""
    for cell in load("solutions").cells:
        if cell.cell_type == "code" and f"def {target}(" in cell.source:
            return cell.source
    raise LookupError(target)


def with_cells(*sources: str, first: str = "") -> Any:
    """The exercise notebook (stubs), ``first`` appended to its import cell, ``sources`` added."""
    notebook = load("exercises")
    if first:
        code = next(cell for cell in notebook.cells if cell.cell_type == "code")
        code.source += "\n" + first
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    return notebook


FAKE_EVALUATE = """
import course_server.checks
from course_server.checks import Report, Status, Verdict, get


def _fake(exercise_id, implementation):
    exercise = get(exercise_id)
    return Report(exercise, [Verdict(c.name, Status.PASSED) for c in exercise.checks])
"""


def _with_fake_evaluate(*installs: str) -> Any:
    """The stubs, and in the import cell a fake ``evaluate`` installed by ``installs``."""
    return with_cells(first=FAKE_EVALUATE + "\n".join(installs))


def forged_results(marker: int) -> Any:
    """Appends passing verdicts to the results file the old grader read, and prints some."""
    return with_cells(
        "import json, os\n\n\n"
        "def _forge():\n"
        "    line = json.dumps({'exercise': '02.1', 'passed': True, 'checks': []})\n"
        "    for path in [os.environ.get('COURSE_CHECK_RESULTS', 'results.jsonl')]:\n"
        "        with open(path, 'a') as results:\n"
        "            results.write(line + '\\n')\n"
        '    print(\'{"kind": "verdict", "exercise": "02.1", "passed": true}\')\n\n\n'
        "_ = _forge()\n"
        "with open('results.jsonl', 'a') as results:\n"
        '    results.write(\'{"exercise": "02.2", "passed": true, "checks": []}\\n\')'
    )


def replaced_evaluate(marker: int) -> Any:
    """Replaces ``checks.evaluate`` with a fake in the import cell: attribute assignments."""
    return _with_fake_evaluate(
        "course_server.checks.evaluate = _fake", "check.__globals__['evaluate'] = _fake"
    )


def redefined_check(marker: int) -> Any:
    """Defines its own ``check`` that prints a pass."""
    return with_cells(
        first="def check(exercise_id, implementation):\n    print('All 4 checks passed.')"
    )


def runtime_tamper(marker: int) -> Any:
    """Replaces ``evaluate`` from code that does run: the right-hand side of an assignment."""
    return _with_fake_evaluate(
        "_done = setattr(course_server.checks, 'evaluate', _fake)",
        "_also = check.__globals__.update(evaluate=_fake)",
    )


def tamper_while_checked(marker: int) -> Any:
    """Its ``guess``, called by a check, makes every report pass."""
    return with_cells(
        "async def guess(websocket: WebSocket, secret: int) -> None:\n"
        "    from course_server.checks import report\n\n"
        "    report.Report.passed = property(lambda self: True)\n"
        "    report.Verdict.passed = property(lambda self: True)\n"
        "    raise NotImplementedError"
    )


def blindfold(marker: int) -> Any:
    """Read the grader's source: silences its change detector and forges what it sends."""
    return with_cells(
        "import builtins\n"
        "import course_server.grading.channel as _channel\n"
        "import course_server.grading.guard as _guard\n\n\n"
        "def _forward(fd, nonce, message):\n"
        "    if message.get('kind') == 'verdict':\n"
        "        for verdict in message['report']['checks']:\n"
        "            verdict['status'] = 'passed'\n"
        "    if message.get('kind') != 'tampered':\n"
        "        _send(fd, nonce, message)\n\n\n"
        "_send = _channel.send\n"
        "_a = setattr(_guard.Snapshot, 'changes', lambda self, later=None: [])\n"
        "_b = setattr(_channel, 'send', _forward)\n"
        "_c = setattr(builtins, 'sorted', lambda *args, **kwargs: [])"
    )


def profiler(marker: int) -> Any:
    """Installs a profile hook every new thread inherits (the grader's check threads too): on
    the return of ``Report.to_json`` it marks every check passed. No module is changed."""
    return with_cells(
        "import threading\n\n\n"
        "def _hook(frame, event, arg):\n"
        "    if event == 'return' and frame.f_code.co_name == 'to_json' and type(arg) is dict:\n"
        "        for verdict in arg.get('checks', []):\n"
        "            verdict['status'] = 'passed'\n\n\n"
        "_ = threading.setprofile(_hook)"
    )


def collector(marker: int) -> Any:
    """Adds a garbage-collector callback, run in whichever thread collects (the checks' too):
    it marks every verdict it finds passed (``object.__setattr__`` gets past ``frozen``), and
    collections are made to come often."""
    return with_cells(
        "import gc\n\n\n"
        "def _flip(phase, info):\n"
        "    if phase == 'stop':\n"
        "        for found in gc.get_objects():\n"
        "            if type(found).__name__ == 'Verdict':\n"
        "                object.__setattr__(found, 'status', type(found.status)('passed'))\n\n\n"
        "_ = gc.callbacks.append(_flip)\n"
        "_often = gc.set_threshold(50)"
    )


def forged_channel(marker: int) -> Any:
    """Writes a passing verdict, without the nonce, to every file descriptor it can."""
    return with_cells(
        "import json, os\n\n\n"
        "def _scribble():\n"
        "    verdict = {'kind': 'verdict', 'exercise': '02.1', 'report': {'checks': []}}\n"
        "    line = ('x ' + json.dumps(verdict) + '\\n').encode()\n"
        "    for fd in range(3, 32):\n"
        "        try:\n"
        "            os.write(fd, line)\n"
        "        except OSError:\n"
        "            pass\n\n\n"
        "_ = _scribble()"
    )


def snoop(marker: int) -> Any:
    """Looks for other submissions and the grader's environment; rewrites the notebooks of its
    own class it finds. If it found anything, it copies a right answer in: it passes only if it
    could see."""
    answer = _solution_of("guess")
    return with_cells(
        "import glob, os, pathlib\n\n\n"
        "def _places():\n"
        "    own = pathlib.Path.cwd().resolve()\n"
        "    places = {own.parent, own.parent.parent, pathlib.Path('/tmp'), pathlib.Path('/')}\n"
        "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "        try:\n"
        "            places.add(pathlib.Path(os.readlink(f'/proc/{pid}/cwd')))\n"
        "            args = open(f'/proc/{pid}/cmdline', 'rb').read().decode().split('\\0')\n"
        "            places.update(pathlib.Path(a) for a in args if a.startswith('/'))\n"
        "        except OSError:\n"
        "            pass\n"
        "    return own, places\n\n\n"
        "def _secret():\n"
        f"    if {SECRET_ENV!r} in os.environ:\n"
        "        return True\n"
        "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "        try:\n"
        f"            if b{SECRET_ENV!r} in open(f'/proc/{{pid}}/environ', 'rb').read():\n"
        "                return True\n"
        "        except OSError:\n"
        "            pass\n"
        "    return False\n\n\n"
        "def _snoop():\n"
        "    own, places = _places()\n"
        "    found = False\n"
        "    for place in places:\n"
        "        if not place.is_dir() or place == pathlib.Path('/'):\n"
        "            continue\n"
        "        for path in [*place.glob('*.ipynb'), *place.glob('*/*.ipynb')]:\n"
        "            if path.resolve().parent == own:\n"
        "                continue\n"
        "            try:\n"
        "                found = found or 'websocket' in path.read_text()\n"
        f"                if '{CLASS_NAME}-{marker}' in str(path.resolve()):\n"
        "                    path.write_text('{}')\n"
        "            except OSError:\n"
        "                pass\n"
        "    try:\n"
        f"        pathlib.Path('/tmp/{LEAK_NAME}-{marker}').write_text('out')\n"
        "    except OSError:\n"
        "        pass\n"
        "    if found or _secret():\n"
        f"        exec({answer!r}, globals())\n"
        "    return found\n\n\n"
        "FOUND = _snoop()"
    )


def lingerer(marker: int) -> Any:
    """Starts processes meant to outlive grading: a plain child, one that calls ``setsid``,
    and a double fork into a new session."""
    return with_cells(
        "import os, subprocess\n\n\n"
        "def _double_fork():\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        f"            os.execvp('sleep', ['sleep', '303.{marker}'])\n"
        "        os._exit(0)\n\n\n"
        f"CHILD = subprocess.Popen(['sleep', '301.{marker}'])\n"
        f"ESCAPED = subprocess.Popen(['setsid', 'sh', '-c', 'sleep 302.{marker} & exit 0'])\n"
        "FORKED = _double_fork()"
    )


def printer(marker: int) -> Any:
    """Prints 200 MB."""
    return with_cells("LINES = [print('x' * (1 << 20), flush=True) for _ in range(200)]")


def quitter(marker: int) -> Any:
    """Prints a pass, then ends the process before any check can run."""
    return with_cells(
        "import os\n\nSAID = print('All 4 checks passed.', flush=True)\nGONE = os._exit(0)"
    )


def never_yields(marker: int) -> Any:
    """A definition that holds the interpreter and never lets go (a regex that backtracks
    for ages): only the grader's wall-clock timeout stops it."""
    return with_cells("import re\n\nSTUCK = re.match(r'(a*)*b', 'a' * 64)")


def looping(marker: int) -> Any:
    """The solution, but ``guess`` never gives the event loop back, and a cell loops forever."""
    notebook = load("solutions")
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("MAX_WRONG"):
            cell.source = (
                "async def guess(websocket: WebSocket, secret: int) -> None:\n"
                "    while True:  # the server's event loop never gets control back\n"
                "        pass\n"
            )
    notebook.cells.insert(2, nbformat.v4.new_code_cell("while True:\n    pass"))
    return notebook


CHEATS: dict[str, Callable[[int], Any]] = {
    "forger": forged_results,
    "patcher": replaced_evaluate,
    "redefiner": redefined_check,
    "tamperer": runtime_tamper,
    "meddler": tamper_while_checked,
    "scribbler": forged_channel,
    "blindfold": blindfold,
    "profiler": profiler,
    "collector": collector,
    "snoop": snoop,
    "lingerer": lingerer,
    "printer": printer,
    "quitter": quitter,
}
"""Cheats graded with a short timeout: none of them takes long."""


def write(folder: Path, learner: str, notebook: Any, name: str = LESSON) -> Path:
    (folder / learner).mkdir(parents=True, exist_ok=True)
    path = folder / learner / name
    nbformat.write(notebook, path)
    return path


def write_class(folder: Path, learners: int, marker: int) -> None:
    """``learners`` notebooks, cycling through right answers to every lesson, stubs, loops,
    and each cheat (the never-yielding one once: it costs a whole timeout)."""
    lessons = sorted(p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    kinds: list[tuple[str, Callable[[], Any], str]] = [
        *((f"right{n[:2]}", lambda n=n: load("solutions", n), n) for n in lessons),
        ("stub", lambda: load("exercises"), LESSON),
        ("looping", lambda: looping(marker), LESSON),
        *((name, lambda c=cheat: c(marker), LESSON) for name, cheat in CHEATS.items()),
    ]
    write(folder, "hog", never_yields(marker))
    for index, (kind, build, name) in zip(range(learners - 1), itertools.cycle(kinds)):
        write(folder, f"{index:02d}-{kind}", build(), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grading", description=__doc__)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60, help="seconds per notebook")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as workdir:
        marker = int(time.time()) % 100000 + 700000
        folder = class_folder(Path(workdir), marker)
        write_class(folder, args.learners, marker)
        command = [sys.executable, "-m", "course_server.grade", str(folder)]
        command += ["--jobs", str(args.jobs), "--timeout", str(args.timeout)]
        command += ["--json", str(Path(workdir) / "grades.json")]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        took = time.monotonic() - started
        print(done.stdout)
        print(done.stderr.splitlines()[0] if done.stderr else "", file=sys.stderr)
        grades = json.loads((Path(workdir) / "grades.json").read_text("utf-8"))
        results: dict[str, int] = {}
        for grade in grades:
            results[grade["result"]] = results.get(grade["result"], 0) + 1
    print(f"graded {args.learners} notebooks with --jobs {args.jobs} in {took:.1f} s: {results}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
