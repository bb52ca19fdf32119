"""The registry every lesson's mutants add themselves to: ``MUTANTS[exercise_id][bug]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MUTANTS: dict[str, dict[str, Any]] = {}


def mutant(exercise_id: str, bug: str) -> Callable[[Any], Any]:
    """Register the decorated implementation as exercise ``exercise_id``'s mutant with ``bug``."""

    def register(implementation: Any) -> Any:
        if bug in MUTANTS.setdefault(exercise_id, {}):
            raise ValueError(f"mutant {bug!r} of {exercise_id} is registered twice")
        MUTANTS[exercise_id][bug] = implementation
        return implementation

    return register
