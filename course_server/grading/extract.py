"""Pick from a notebook the statements that define things: the learner's code, minus its actions.

The grader runs the learner's code, not the notebook: from each code cell it keeps imports,
function and class definitions and assignments to plain names (``MAX_WRONG = 5``), and drops every
other top-level statement: ``check(...)`` calls, attribute assignments such as
``checks.evaluate = ...``, loops, file writes. What is kept still runs (a default value, a
decorator or the right-hand side of an assignment is code), which is why the worker also watches
the check machinery for changes (``guard``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
from types import CodeType
from typing import Any

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclasses.dataclass(frozen=True)
class Cell:
    """The kept statements of one code cell, compiled; ``dropped`` counts the others."""

    index: int
    code: list[CodeType]
    dropped: int


def _plain_names(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, ast.Tuple | ast.List):
        return all(_plain_names(element) for element in target.elts)
    return False


def defines(statement: ast.stmt) -> bool:
    """Does this top-level statement only define things (import, def, class, ``name = ...``)?"""
    if isinstance(statement, KEPT):
        return True
    if isinstance(statement, ast.Assign):
        return all(_plain_names(target) for target in statement.targets)
    if isinstance(statement, ast.AnnAssign):
        return isinstance(statement.target, ast.Name) and statement.value is not None
    return False


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    # IPython magics and shell escapes are not Python: they are actions, never definitions.
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()
    )


def cells(notebook_text: str) -> list[Cell]:
    """The kept statements of each code cell of the notebook, in order (cells that fail to
    parse are left out whole, as a kernel would fail to run them)."""
    notebook = json.loads(notebook_text)
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_source(cell), filename=f"<cell {index}>")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        kept = [s for s in tree.body if defines(s)]
        code = [
            compile(ast.Module(body=[s], type_ignores=[]), f"<cell {index}>", "exec") for s in kept
        ]
        found.append(Cell(index, code, len(tree.body) - len(kept)))
    return found
