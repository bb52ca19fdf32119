"""Mutation testing of the exercise checks: small edits to each solution, and which ones pass.

Usage: python scripts/mutate.py                      (every exercise)
       python scripts/mutate.py --exercise 03.1      (one; repeat the option for more)
       python scripts/mutate.py --limit 20 --jobs 4  (at most 20 mutants each, 4 at a time)
       python scripts/mutate.py --killers            (also: how many each check killed first)

Each mutant is the solution notebook with one edit inside a solution region (the lines between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` of the cell that defines the exercise's target, as
``scripts/make_exercises.py`` reads them): a comparison flipped, an operator swapped, a constant
off by one, a condition negated, a statement deleted, a close without its code or reason, … A
mutant is *killed* when ``checks.evaluate`` fails it; a survivor is either a behaviour no check
pins (write a check) or an equivalent program (say so in the exercise's mutants).

Why not mutmut or cosmic-ray: both mutate ``.py`` files of an importable package and run a test
command per mutant; the code here lives in notebook cells and is judged by ``checks.evaluate``
in-process, so a small AST mutator is simpler than adapting either.

Each exercise runs in a process of its own (``--exercise`` with one id runs in this process):
a mutant that never gives its event loop back leaves a thread spinning, which must not slow the
next exercise's mutants. Within an exercise, ``--jobs`` mutants are checked at once, in threads,
as ``tests/checks/test_checks.py`` does.
"""

from __future__ import annotations

import argparse
import ast
import collections
import copy
import dataclasses
import difflib
import importlib.util
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def _make_exercises() -> Any:
    """``scripts/make_exercises.py``, whose markers define a solution region."""
    spec = importlib.util.spec_from_file_location(
        "make_exercises", ROOT / "scripts/make_exercises.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_exercises = _make_exercises()


# --- the notebook: its cells, the target's cell, the solution regions -------------------------


def code_cells(path: Path) -> list[str]:
    """The sources of a notebook's code cells, in order."""
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def namespace(path: Path, sources: list[str] | None = None) -> dict[str, Any]:
    """The names a notebook defines, run cell by cell as the notebook runs, ``check(...)`` skipped.

    ``sources`` replaces the notebook's code cells (a mutant's notebook).
    """
    namespace: dict[str, Any] = {"__name__": f"{path.parent.name}_{path.name[:2]}"}
    for source in code_cells(path) if sources is None else sources:
        if not source.startswith("check("):
            # dont_inherit: this module's ``from __future__ import annotations`` is not the
            # notebook's, and pydantic could not resolve the notebook's annotations under it.
            exec(compile(source, str(path), "exec", dont_inherit=True), namespace)
    return namespace


def solution_notebook(lesson: str) -> Path:
    (path,) = SOLUTIONS.glob(f"{lesson}_*.ipynb")
    return path


def regions(source: str) -> list[tuple[int, int]]:
    """The solution regions of a cell: (BEGIN line, END line), 1-based, markers excluded."""
    found, begin = [], None
    for number, line in enumerate(source.split("\n"), 1):
        if begin is None and make_exercises.BEGIN.match(line):
            begin = number
        elif begin is not None and make_exercises.END.match(line):
            found.append((begin, number))
            begin = None
    return found


def target_cell(cells: list[str], target: str) -> int:
    """The index of the code cell that defines ``target`` (a function or a class) at top level."""
    for index, source in enumerate(cells):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # a cell of IPython magics, say: it defines no exercise
        for node in tree.body:
            kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            if isinstance(node, kinds) and node.name == target and regions(source):
                return index
    raise LookupError(f"no code cell defines {target} with a solution region")


# --- mutants ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One edit of a cell: the text from ``start`` to ``end`` (line, column) becomes ``text``."""

    operator: str
    start: tuple[int, int]
    end: tuple[int, int]
    text: str

    def apply(self, source: str) -> str:
        lines = source.split("\n")
        (first, col), (last, end_col) = self.start, self.end
        head = _chars(lines[first - 1], col)
        tail = lines[last - 1][_chars_len(lines[last - 1], end_col) :]
        return "\n".join([*lines[: first - 1], head + self.text + tail, *lines[last:]])

    def diff(self, source: str) -> list[str]:
        """The unified diff lines (``-``/``+``) of this edit."""
        changed = difflib.unified_diff(
            source.split("\n"), self.apply(source).split("\n"), lineterm="", n=0
        )
        return [line for line in changed if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def _chars(line: str, byte_offset: int) -> str:
    """The text of ``line`` up to a UTF-8 byte offset (``ast`` counts columns in bytes)."""
    return line.encode()[:byte_offset].decode()


def _chars_len(line: str, byte_offset: int) -> int:
    return len(_chars(line, byte_offset))


COMPARISONS: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Lt: [ast.LtE],
    ast.LtE: [ast.Lt],
    ast.Gt: [ast.GtE],
    ast.GtE: [ast.Gt],
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
}
ARITHMETIC: dict[type[ast.operator], list[type[ast.operator]]] = {
    ast.Add: [ast.Sub],
    ast.Sub: [ast.Add],
    ast.Mult: [ast.Div],
    ast.Div: [ast.Mult],
    ast.FloorDiv: [ast.Div],
    ast.Mod: [ast.FloorDiv],
    ast.Pow: [ast.Mult],
}
SYMBOLS: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
NEVER_RAISED = "ArithmeticError"  # what an except clause is narrowed to: nothing here raises it


def _span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _replace(operator: str, node: ast.AST, replacement: ast.AST | str) -> Mutant:
    text = replacement if isinstance(replacement, str) else ast.unparse(replacement)
    return Mutant(operator, *_span(node), text)


def _edited(node: ast.AST, change: Callable[[Any], None]) -> ast.AST:
    twin = copy.deepcopy(node)
    change(twin)
    return twin


def _is_close_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "close"
    )


def _text(source: str, start: tuple[int, int], end: tuple[int, int]) -> str:
    """The text of ``source`` from ``start`` to ``end`` ((line, UTF-8 byte column))."""
    lines = source.split("\n")[start[0] - 1 : end[0]]
    lines[-1] = _chars(lines[-1], end[1])
    lines[0] = lines[0][_chars_len(lines[0], start[1]) :]
    return "\n".join(lines)


def _swap(operator: str, source: str, left: ast.AST, right: ast.AST, old: str, new: str) -> Mutant:
    """Swap the operator ``old`` between two operands for ``new``, touching nothing else."""
    start = (left.end_lineno, left.end_col_offset)  # type: ignore[attr-defined]
    end = (right.lineno, right.col_offset)  # type: ignore[attr-defined]
    gap = _text(source, start, end)  # " < ", ") and (": the operator, spaces, parentheses
    return Mutant(operator, start, end, gap.replace(old, new, 1))


def node_mutants(node: ast.AST, source: str) -> Iterator[Mutant]:
    """The mutants of one node (not of its children)."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            for new in COMPARISONS.get(type(op), []):
                old_symbol, new_symbol = SYMBOLS[type(op)], SYMBOLS[new]
                what = f"`{old_symbol}` → `{new_symbol}`"
                yield _swap(what, source, operands[i], operands[i + 1], old_symbol, new_symbol)
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        left, right = (
            (node.left, node.right) if isinstance(node, ast.BinOp) else (node.target, node.value)
        )
        for new in ARITHMETIC.get(type(node.op), []):
            old_symbol, new_symbol = SYMBOLS[type(node.op)], SYMBOLS[new]
            what = f"`{old_symbol}` → `{new_symbol}`"
            yield _swap(what, source, left, right, old_symbol, new_symbol)
    elif isinstance(node, ast.BoolOp):
        old_name, name = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        if len(node.values) == 2:
            yield _swap(f"`{old_name}` → `{name}`", source, *node.values, old_name, name)
        else:
            new_op = ast.Or() if name == "or" else ast.And()
            twin = _edited(node, lambda n: setattr(n, "op", new_op))
            yield _replace(f"`{old_name}` → `{name}`", node, twin)
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield _replace(f"`{node.value}` → `{not node.value}`", node, repr(not node.value))
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        for delta in (1, -1):
            yield _replace(
                f"constant {node.value} → {node.value + delta}", node, repr(node.value + delta)
            )
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield _replace("`not` removed", node, f"({ast.unparse(node.operand)})")
    elif isinstance(node, (ast.If, ast.While, ast.IfExp)) and not isinstance(
        node.test, ast.Constant
    ):
        yield _replace("condition negated", node.test, f"not ({ast.unparse(node.test)})")
    elif isinstance(node, ast.comprehension):
        for condition in node.ifs:
            yield _replace("condition negated", condition, f"not ({ast.unparse(condition)})")
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield _replace("`return x` → `return None`", node, "return None")
    elif isinstance(node, ast.Break):
        yield _replace("`break` → `continue`", node, "continue")
    elif isinstance(node, ast.Continue):
        yield _replace("`continue` → `break`", node, "break")
    elif isinstance(node, ast.Await) and _is_close_call(node.value):
        yield _replace("`await` of a close removed", node, ast.unparse(node.value))
    elif isinstance(node, ast.ExceptHandler) and node.type is not None:
        if isinstance(node.type, ast.Tuple):
            for kept in node.type.elts:
                yield _replace("except clause narrowed", node.type, ast.unparse(kept))
        else:
            yield _replace("except clause catches the wrong type", node.type, NEVER_RAISED)
    if _is_close_call(node) and node.args:  # type: ignore[attr-defined]
        for keep in range(len(node.args)):  # type: ignore[attr-defined]
            twin = _edited(node, lambda n, keep=keep: setattr(n, "args", n.args[:keep]))
            what = "code and reason" if keep == 0 else "reason"
            yield _replace(f"close without its {what}", node, twin)


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def mutants(source: str) -> list[Mutant]:
    """Every mutant of the solution regions of a cell, in source order, without duplicates."""
    spans = regions(source)
    inside = lambda node: any(  # noqa: E731 — a one-line predicate
        begin < node.lineno and node.end_lineno < end for begin, end in spans
    )
    tree = ast.parse(source)
    # A bare ``return`` ending a function changes nothing when deleted: an equivalent mutant.
    final_returns = {
        id(function.body[-1])
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        and isinstance(function.body[-1], ast.Return)
        and (function.body[-1].value is None or ast.unparse(function.body[-1].value) == "None")
    }
    found: dict[str, Mutant] = {}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") and not isinstance(node, ast.comprehension):
            continue
        anchor = node.target if isinstance(node, ast.comprehension) else node
        if not inside(anchor):
            continue
        candidates = list(node_mutants(node, source))
        if (
            isinstance(node, ast.stmt)
            and not isinstance(node, ast.Pass)
            and id(node) not in final_returns
            and not _is_docstring(node)
        ):
            candidates.append(_replace("statement deleted", node, "pass"))
        for mutant in candidates:
            found.setdefault(mutant.apply(source), mutant)
    return sorted(found.values(), key=lambda m: (m.start, m.end, m.operator))


def compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


def runnable(source: str, found: list[Mutant]) -> list[Mutant]:
    """The mutants of ``source`` that compile (``return x`` → ``return None`` in an async
    generator, say, does not): the others are skipped, not counted as killed."""
    return [mutant for mutant in found if compiles(mutant.apply(source))]


# --- running them -----------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    killed: bool
    why: str  # the first failing check, or "" for a survivor


@dataclasses.dataclass
class Score:
    exercise: str
    title: str
    generated: int
    skipped: int  # did not compile
    outcomes: list[Outcome]
    source: str
    where: str  # the notebook and cell the mutants edit

    @property
    def killed(self) -> int:
        return sum(o.killed for o in self.outcomes)

    @property
    def survived(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.killed]

    @property
    def percent(self) -> float:
        return 100 * self.killed / len(self.outcomes) if self.outcomes else 100.0

    def lines(self, killers: bool = False) -> list[str]:
        """The score, each survivor as a diff, and (``killers``) how many each check killed."""
        head = (
            f"{self.exercise} {self.title}: {self.generated} mutants"
            + (f" ({self.skipped} did not compile)" if self.skipped else "")
            + f", {len(self.outcomes)} run, {self.killed} killed, {len(self.survived)} survived,"
            f" score {self.percent:.0f}%"
        )
        lines = [head]
        for outcome in self.survived:
            line = outcome.mutant.start[0]
            lines.append(f"  survived: {outcome.mutant.operator} ({self.where}, line {line})")
            lines.extend(f"    {diff}" for diff in outcome.mutant.diff(self.source))
        if killers:
            kills = collections.Counter(o.why for o in self.outcomes if o.killed)
            lines.extend(f"  killed {n} first: {why}" for why, n in kills.most_common())
        return lines


def sample(found: list[Mutant], limit: int | None, seed: str) -> list[Mutant]:
    """At most ``limit`` of ``found``, the same ones every run (seeded by the exercise id)."""
    if limit is None or len(found) <= limit:
        return found
    chosen = random.Random(seed).sample(range(len(found)), limit)
    return [found[i] for i in sorted(chosen)]


def score(exercise_id: str, limit: int | None = None, jobs: int = 4) -> Score:
    """Generate an exercise's mutants, check each, and count the killed ones."""
    from course_server import checks

    exercise = checks.get(exercise_id)
    path = solution_notebook(exercise.lesson)
    cells = code_cells(path)
    index = target_cell(cells, exercise.target)
    source = cells[index]
    found = mutants(source)
    compiled = runnable(source, found)
    chosen = sample(compiled, limit, exercise_id)

    def run(mutant: Mutant) -> Outcome:
        sources = [*cells[:index], mutant.apply(source), *cells[index + 1 :]]
        try:
            implementation = namespace(path, sources)[exercise.target]
        except Exception as exc:  # the notebook itself fails to run: killed before any check
            return Outcome(mutant, True, f"the notebook raised {type(exc).__name__}")
        report = checks.evaluate(exercise_id, implementation)
        failed = [v for v in report.verdicts if not v.passed]
        return Outcome(mutant, not report.passed, failed[0].check if failed else "")

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        outcomes = list(pool.map(run, chosen))
    skipped = len(found) - len(compiled)
    where = f"{path.relative_to(ROOT)} code cell {index + 1}"
    return Score(exercise_id, exercise.title, len(found), skipped, outcomes, source, where)


def score_in_subprocess(
    exercise_id: str, limit: int | None, jobs: int, killers: bool = False
) -> list[str]:
    """Run ``score`` for one exercise in a fresh process; its printed lines."""
    command = [sys.executable, __file__, "--exercise", exercise_id, "--jobs", str(jobs)]
    command += ["--limit", str(limit)] if limit is not None else []
    command += ["--killers"] if killers else []
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    environment = {**os.environ, "PYTHONPATH": path}  # this checkout's course_server
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, env=environment
    )
    if done.returncode != 0:
        return [f"{exercise_id}: the run failed ({done.returncode}): {done.stderr.strip()[-500:]}"]
    # Only the score's lines: a mutant's server may print (an access log line, say).
    lines = done.stdout.rstrip("\n").split("\n")
    return [line for line in lines if line.startswith((exercise_id, "  "))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exercise", action="append", help="an exercise id (default: all)")
    parser.add_argument("--limit", type=int, help="check at most N mutants per exercise")
    parser.add_argument("--jobs", type=int, default=4, help="mutants checked at once")
    parser.add_argument(
        "--killers", action="store_true", help="also count the mutants each check failed first"
    )
    args = parser.parse_args(argv)
    from course_server import checks

    ids = args.exercise or [e.id for e in checks.exercises()]
    if len(ids) == 1:
        found = score(ids[0], args.limit, args.jobs)
        print("\n".join(found.lines(args.killers)), flush=True)
        return 0
    for exercise_id in ids:
        lines = score_in_subprocess(exercise_id, args.limit, args.jobs, args.killers)
        print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
