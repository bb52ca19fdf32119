"""Plausible wrong answers to the exercises, one bug each: every one must fail some check.

``MUTANTS[exercise_id]`` maps a description of the bug to the implementation that has it, one
module per lesson (``lesson02.py``, …), and ``references.py``: the cheats that use the course's
own implementation of an exercise (``tests/checks/test_checks.py`` checks each is told so). Each is
the solution with that one mistake, written out in full (no text surgery on the solution), so
a mutant stays readable and keeps meaning the same thing when the solution is reworded. A
mutant is a mistake a learner really makes (an edge case, the wrong exception, an off-by-one,
a missing timeout, a cheat), not a random edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from mutants.registry import MUTANTS, mutant

for _module in pkgutil.iter_modules(__path__):
    # One module per lesson, and ``references``: the cheats that use the course's own code.
    if _module.name.startswith("lesson") or _module.name == "references":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MUTANTS", "mutant"]
