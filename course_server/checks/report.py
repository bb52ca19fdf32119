"""Verdicts: what one check found, and the report of one ``check()`` call, in words and JSON.

``failure`` turns whatever ended a check into a verdict a learner can act on: their code's own
exception where it raised one, "not implemented yet" for a stub, else the check's hint.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any

from websockets.exceptions import InvalidStatus

from course_server.checks.harness import CheckFailed, Harness, LearnerError

if TYPE_CHECKING:
    from course_server.checks import Exercise


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_IMPLEMENTED = "not implemented"
    TIMED_OUT = "timed out"
    SKIPPED = "skipped"


@dataclasses.dataclass(frozen=True)
class Verdict:
    check: str
    status: Status
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    def __str__(self) -> str:
        return f"✓ {self.check}" if self.passed else f"✗ {self.check} — {self.hint}"


@dataclasses.dataclass
class Report:
    """The verdicts of one ``check()`` call."""

    exercise: Exercise
    verdicts: list[Verdict]

    @property
    def passed(self) -> bool:
        return len(self.verdicts) == len(self.exercise.checks) and all(
            v.passed for v in self.verdicts
        )

    def __str__(self) -> str:
        lines = [f"Exercise {self.exercise.id} · {self.exercise.title}", *map(str, self.verdicts)]
        ok, total = sum(v.passed for v in self.verdicts), len(self.exercise.checks)
        if self.passed:
            lines.append(f"All {total} checks passed.")
        elif all(v.status is Status.NOT_IMPLEMENTED for v in self.verdicts):
            lines.append(
                f"Not implemented yet: replace `raise NotImplementedError(...)` in "
                f"`{self.exercise.target}` with your code, then run this cell again."
            )
        else:
            lines.append(f"{ok} of {total} checks passed.")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise.id,
            "passed": self.passed,
            "checks": [dataclasses.asdict(v) for v in self.verdicts],
        }


def described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def failure(harness: Harness, error: BaseException) -> Verdict:
    """Why a check failed, said in terms of the learner's code wherever that is the cause."""
    raised = [e.error if isinstance(e, LearnerError) else e for e in (error, *harness.errors)]
    if any(isinstance(e, NotImplementedError) for e in raised):
        return Verdict("", Status.NOT_IMPLEMENTED, "not implemented yet")
    learner = [e for e in harness.errors if not isinstance(e, NotImplementedError)]
    if isinstance(error, LearnerError):
        learner.insert(0, error.error)
    cause = f"your code raised {described(learner[0])}" if learner else ""
    if isinstance(error, CheckFailed):
        hint = str(error)
        return Verdict("", Status.FAILED, f"{hint} ({cause})" if cause else hint)
    if isinstance(error, TimeoutError):
        return Verdict("", Status.FAILED, cause or "a client of the check got no answer in time")
    if isinstance(error, InvalidStatus):
        status = error.response.status_code
        return Verdict("", Status.FAILED, f"the handshake was refused with HTTP {status}")
    return Verdict("", Status.FAILED, cause or described(error))
