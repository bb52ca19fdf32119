"""Lessons 01 to 03: each mutant is rejected by the check named for its bug, not by chance.

``test_checks`` asks only that a mutant fails some check; here each bug names the check that
must fail it, so a check that stops pinning its behaviour shows up as the mutant it lets through.
"""

from __future__ import annotations

import pytest
from exercise_reports import TIMEOUT
from mutants import MUTANTS

from course_server import checks
from course_server.checks import Report, Status

pytestmark = pytest.mark.timeout(TIMEOUT)  # the first test may evaluate every exercise

EXERCISES = ("01.1", "01.2", "02.1", "02.2", "03.1", "03.2")

KILLED_BY: dict[str, dict[str, str]] = {
    "01.1": {
        "short polling: answers at once, news or not": "with no news, answers after wait "
        "seconds: no events, and the feed's last_id",
        "sleeps the whole wait, then answers": "waits for the next event, and answers as soon "
        "as it comes",
        "no deadline: waits forever when nothing comes": "with no news, answers after wait "
        "seconds: no events, and the feed's last_id",
        "lets the timeout escape: HTTP 500 instead of an empty answer": "with no news, answers "
        "after wait seconds: no events, and the feed's last_id",
        "subscribes from 0, not from after: old events wake it at once": "with no news, answers "
        "after wait seconds: no events, and the feed's last_id",
        "slices the history by position: assumes ids start at 1": "answers at once with every "
        "event after the given id, whatever the ids",
        "last_id is the last returned event's, 0 when none": "with no news, answers after wait "
        "seconds: no events, and the feed's last_id",
        "answers with only the first new event": "answers at once with every event after the given "
        "id, whatever the ids",
        "waits at most one second, whatever wait says": "a wait longer than a second is waited out",
        "int(wait): a wait of 0.5 s answers at once": "with no news, answers after wait "
        "seconds: no events, and the feed's last_id",
        "polls with time.sleep: the server stops while it waits": "waits for the next event, "
        "and answers as soon as it comes",
    },
    "01.2": {
        "reconnects from the start: repeats events": "collects every event once, in order, "
        "across reconnects",
        "reconnects one past the last id: skips events": "collects every event once, in order, "
        "across reconnects",
        "gives up when the connection drops": "collects every event once, in order, across "
        "reconnects",
        "resumes from the number of events so far: assumes ids 1, 2, 3": "resumes after the "
        "last id, whatever the ids (not from 1, with gaps)",
        "returns the ids, not the events": "returns the events as dicts, as the server sent them",
        "returns the raw JSON text of each event": "returns the events as dicts, as the server "
        "sent them",
        "checks count only between connections": "stops at count",
        "events[-1] when a connection brought nothing: IndexError": "a connection that closes "
        "before any event is tried again",
        "gives up when a connection brings nothing": "a connection that closes before any event "
        "is tried again",
        "stops on a normal close (1000)": "collects every event once, in order, across reconnects",
        "cheat: makes up events 1 to count": "resumes after the last id, whatever the ids (not "
        "from 1, with gaps)",
    },
    "02.1": {
        "int() on text that is not a number ends the game": "a message that is not a whole "
        "number gets a reply, and the game goes on",
        "out of guesses closes with 1000": "the fifth wrong guess closes with 4000 'Out of "
        "guesses', without a hint",
        "higher and lower swapped": "answers higher and lower, negative numbers too",
        "closes before accept: the client sees HTTP 403, not the code": "answers higher and "
        "lower, negative numbers too",
        "str.isdigit(): a negative guess is 'not a whole number'": "answers higher and lower, "
        "negative numbers too",
        "float(): '4.2' and '1e3' count as guesses": "a message that is not a whole number gets "
        "a reply, and the game goes on",
        "out of guesses at the fourth wrong guess": "answers higher and lower, negative numbers "
        "too",
        "out of guesses at the sixth wrong guess": "the fifth wrong guess closes with 4000 'Out "
        "of guesses', without a hint",
        "the fifth guess loses even when it is right": "the fifth guess still wins when it is "
        "right",
        "the fifth wrong guess still gets a hint before the close": "the fifth wrong guess "
        "closes with 4000 'Out of guesses', without a hint",
        "closes a win with 1000 and no reason": "closes with 1000 'Correct' on the right guess",
        "loses with reason 'Game over'": "the fifth wrong guess closes with 4000 'Out of "
        "guesses', without a hint",
        "cheat: the secret is always 42": "answers higher and lower, negative numbers too",
        "counts wrong guesses in a module-level variable, shared by every game": "each game has "
        "its own secret and counts its own guesses",
    },
    "02.2": {
        "receive_json(): text that is not JSON ends the connection": "text that is not JSON "
        "gets an invalid_json error, and the connection stays",
        "division by zero raises": "division by zero gets a division_by_zero error, and the "
        "connection stays",
        "a binary frame is treated as bad JSON": "a binary frame closes the connection with "
        "1003, even if it holds JSON",
        "floor division: 7 / 2 is 3": "computes add, sub, mul and div, on any numbers",
        "sub computes b - a": "computes add, sub, mul and div, on any numbers",
        "every ValidationError is invalid_json": "JSON of the wrong shape gets an invalid error, "
        "and the connection stays",
        "every ValidationError is invalid, not-JSON text too": "text that is not JSON gets an "
        "invalid_json error, and the connection stays",
        "b = 0 is an error for every op": "computes add, sub, mul and div, on any numbers",
        "decodes a binary frame and answers it": "a binary frame closes the connection with "
        "1003, even if it holds JSON",
        "error frames carry no message": "an error frame has a type, a code and a message",
        "integers only: 2.5 is invalid": "computes add, sub, mul and div, on any numbers",
        "Calculation(**json.loads(text)): JSON that is not an object crashes": "JSON of the "
        "wrong shape gets an invalid error, and the connection stays",
        "cheat: answers 6 and 3's results whatever the operands": "computes add, sub, mul and "
        "div, on any numbers",
    },
    "03.1": {},
    "03.2": {},
}


@pytest.fixture
def reports(exercise_reports: dict[tuple[str, str], Report]) -> dict[tuple[str, str], Report]:
    return exercise_reports  # every mutant, checked once for the whole session


def lesson_mutants(exercise_id: str) -> set[str]:
    """The exercise's mutants from its lesson's module (not the shared reference cheats)."""
    module = f"mutants.lesson{exercise_id[:2]}"
    return {bug for bug, m in MUTANTS[exercise_id].items() if m.__module__ == module}


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_mutant_names_the_check_that_rejects_it(exercise_id: str) -> None:
    assert set(KILLED_BY[exercise_id]) == lesson_mutants(exercise_id)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_check_named_here_exists(exercise_id: str) -> None:
    names = {check.name for check in checks.get(exercise_id).checks}
    assert set(KILLED_BY[exercise_id].values()) <= names


@pytest.mark.parametrize(
    ("exercise_id", "bug"), [(e, bug) for e in EXERCISES for bug in KILLED_BY[e]]
)
def test_the_named_check_rejects_the_mutant(
    reports: dict[tuple[str, str], Report], exercise_id: str, bug: str
) -> None:
    report = reports[exercise_id, bug]
    verdict = {v.check: v for v in report.verdicts}[KILLED_BY[exercise_id][bug]]
    assert verdict.status in {Status.FAILED, Status.TIMED_OUT}, str(report)
