"""Make exercises/ from solutions/: cut each solution out, keep everything else.

Usage: python scripts/make_exercises.py           (rewrite exercises/ from solutions/)
       python scripts/make_exercises.py --check   (exit 1 if exercises/ is out of date)

``solutions/NN_name.ipynb`` is the single source; ``exercises/NN_name.ipynb`` is generated from
it and never edited by hand (the idea of the scikit-learn MOOC's
``build_tools/generate-exercise-from-solution.py``). In a code cell, the lines from
``# BEGIN SOLUTION`` to ``# END SOLUTION`` (markers included) become one line,
``raise NotImplementedError("...")``, at the indentation of the ``BEGIN`` marker. A region must
sit inside a function body, so the exercise cell still runs and defines the function the check
calls. ``# BEGIN SOLUTION: some text`` makes "some text" the message; by default it names the
enclosing function. Every code cell's outputs and execution count are cleared: a learner has
run nothing yet. Markdown cells (the prompts) are kept as they are.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

BEGIN = re.compile(r"^(?P<indent>[ ]*)# BEGIN SOLUTION(?::\s*(?P<message>.+))?\s*$")
END = re.compile(r"^(?P<indent>[ ]*)# END SOLUTION\s*$")
DEF = re.compile(r"^(?P<indent>[ ]*)(?:async\s+)?def\s+(?P<name>\w+)")


class MarkerError(ValueError):
    """Solution markers that do not pair up, or sit outside a function body."""


def enclosing_function(lines: list[str], index: int, indent: str) -> str | None:
    """The name of the ``def`` whose body holds line ``index`` (indented ``indent``), if any."""
    for line in reversed(lines[:index]):
        match = DEF.match(line)
        if match and len(match["indent"]) < len(indent):
            return match["name"]
    return None


def strip_solutions(source: str) -> str:
    """``source`` with every solution region replaced by ``raise NotImplementedError(...)``."""
    lines = source.split("\n")
    kept: list[str] = []
    region: re.Match[str] | None = None
    for number, line in enumerate(lines, 1):
        if region is None:
            begin = BEGIN.match(line)
            if begin is None:
                if END.match(line):
                    raise MarkerError(f"line {number}: END SOLUTION without a BEGIN")
                kept.append(line)
                continue
            function = enclosing_function(lines, number - 1, begin["indent"])
            if function is None or not begin["indent"]:
                raise MarkerError(f"line {number}: a solution must sit inside a function body")
            message = begin["message"] or f"write the body of {function}() here"
            literal = json.dumps(message, ensure_ascii=False)  # a double-quoted Python string
            kept.append(f"{begin['indent']}raise NotImplementedError({literal})")
            region = begin
        elif BEGIN.match(line):
            raise MarkerError(f"line {number}: BEGIN SOLUTION inside another solution")
        elif (end := END.match(line)) is not None:
            if end["indent"] != region["indent"]:
                raise MarkerError(f"line {number}: END SOLUTION indented unlike its BEGIN")
            region = None
    if region is not None:
        raise MarkerError("BEGIN SOLUTION without an END")
    return "\n".join(kept)


def make_exercise(solution: NotebookNode) -> NotebookNode:
    """The exercise notebook for a solution notebook."""
    exercise = copy.deepcopy(solution)
    for cell in exercise.cells:
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source)
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    return exercise


def render(notebook: NotebookNode) -> str:
    """The notebook's file contents, exactly as this script writes them."""
    return nbformat.writes(notebook) + "\n"


def generated() -> dict[Path, str]:
    """Every exercise file's path and the contents it should have."""
    made = {}
    for solution in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(solution, as_version=4)
        try:
            made[EXERCISES / solution.name] = render(make_exercise(notebook))
        except MarkerError as exc:
            raise MarkerError(f"{solution.relative_to(ROOT)}: {exc}") from None
    return made


def out_of_date() -> list[str]:
    """Exercise files that differ from what their solutions make, or have no solution."""
    made = generated()
    stale = [p for p, text in made.items() if not p.exists() or p.read_text("utf-8") != text]
    orphans = [p for p in EXERCISES.glob("*.ipynb") if p not in made]
    return sorted(str(p.relative_to(ROOT)) for p in [*stale, *orphans])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = out_of_date()
        for name in stale:
            print(f"out of date: {name} (run: python scripts/make_exercises.py)")
        return 1 if stale else 0
    made = generated()
    EXERCISES.mkdir(exist_ok=True)
    for path, text in made.items():
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for orphan in sorted(set(EXERCISES.glob("*.ipynb")) - set(made)):
        orphan.unlink()  # generated files only: its solution is gone
        print(f"removed {orphan.relative_to(ROOT)} (no solution)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
