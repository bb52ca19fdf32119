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

EXERCISES = ("01.1", "01.2", "02.1", "02.2", "03.1", "03.2", "03.3")

# 01.1
NEWS = "answers at once with every event after the given id, whatever the ids"
WAITS = "waits for the next event, and answers as soon as it comes"
GIVES_UP = "with no news, answers after wait seconds: no events, and the feed's last_id"
LONG_WAIT = "a wait longer than a second is waited out"
MANY = "many clients waiting at once all get the next event"
AHEAD = "?after= past the feed's last id waits for an id above it; last_id is the feed's"

# 01.2
RESUMES = "collects every event once, in order, across reconnects"
STOPS = "stops at count"
LATER_NEWS = "waits for events that are not published yet"
ANY_IDS = "resumes after the last id, whatever the ids (not from 1, with gaps)"
AS_SENT = "returns the events as dicts, as the server sent them"
EMPTY_CONNECTION = "a connection that closes before any event is tried again, after the last id"
AT_COUNT = "returns at count, without waiting for the server to close"

# 02.1
HINTS = "answers higher and lower, negative numbers too"
WIN = "closes with 1000 'Correct' on the right guess"
NOT_A_NUMBER = "a message that is not a whole number gets a reply, and the game goes on"
LOSE = "the fifth wrong guess closes with 4000 'Out of guesses', without a hint"
LAST_CHANCE = "the fifth guess still wins when it is right"
OWN_GAME = "each game has its own secret and counts its own guesses"

# 02.2
RESULTS = "computes add, sub, mul and div, on any numbers"
NOT_JSON = "text that is not JSON gets an invalid_json error, and the connection stays"
WRONG_SHAPE = "JSON of the wrong shape gets an invalid_message error, and the connection stays"
ZERO = "division by zero gets a division_by_zero error, and the connection stays"
ERROR_FRAME = "an error frame has a type, a code and a message"
BINARY = "a binary frame closes the connection with 1003, even if it holds JSON"

# 03.1
OTHERS = "everyone but the sender gets the message"
DEAD = "dead connections (their clients gone) are pruned; the others still get the message"
CLOSED = "members the server closed are pruned, and the sender's endpoint carries on"
MEANWHILE = "members leaving during a broadcast do not throw it off"
AT_ONCE = "everyone talking at once hears everyone else"
JOINS_MEANWHILE = "a member joining during a broadcast stays in the hub and hears the next one"

# 03.2
IN_ORDER = "send() queues without waiting; the writer sends in order"
KEEPS_UP = "a client that keeps up is never cut off, however many messages it gets"
FULL = "send() says False exactly when the queue is full, and ever after"
CUT_OFF = "the cut-off closes the connection once, with 4008 'slow consumer'"
STALLED = "a client that stops reading is cut off with 4008; the other gets everything"

# 03.3
AT_ONCE_CONNECTED = "returns what connect() returns, at once, without waiting"
RETRIES = "tries at once, then waits before each retry until connect() succeeds"
EXPONENTIAL = "retry n waits rng() × base·2ⁿ while that is under the cap: base·2⁰ first"
FULL_JITTER = "full jitter: a wait is anywhere from 0 to the whole bound"
CAPPED = "the cap bounds every wait, even at retry 2000"
ANY_SCRIPT = "follows the rule for any base, cap, attempts and draws (300 drawn scripts)"
RAISES_LAST = "after attempts failures, raises the last error itself, with no wait after it"
CONNECTION_ERRORS = "retries connection errors only: any other error is raised at once"
REAL_SERVER = "reconnects to a real server that answers its first handshakes with HTTP 503"
REALLY_WAITS = "without sleep=, it waits with asyncio.sleep: other tasks run meanwhile"

KILLED_BY: dict[str, dict[str, str]] = {
    "01.1": {
        "short polling: answers at once, news or not": GIVES_UP,
        "sleeps the whole wait, then answers": WAITS,
        "no deadline: waits forever when nothing comes": GIVES_UP,
        "lets the timeout escape: HTTP 500 instead of an empty answer": GIVES_UP,
        "subscribes from 0, not from after: old events wake it at once": GIVES_UP,
        "slices the history by position: assumes ids start at 1": NEWS,
        "last_id is the last returned event's, 0 when none": GIVES_UP,
        "answers with only the first new event": NEWS,
        "waits at most one second, whatever wait says": LONG_WAIT,
        "int(wait): a wait of 0.5 s answers at once": GIVES_UP,
        "polls with time.sleep: the server stops while it waits": WAITS,
        "last_id is the client's own after when no event comes": AHEAD,
        "waits only when after == last_id: a client ahead of the feed is answered at once": AHEAD,
        "subscribes from the feed's last id: any new event wakes it, after ?after= or not": AHEAD,
        "looks for news once a second with asyncio.sleep: answers up to a second late": WAITS,
        "timeout(wait or None): wait=0 waits for ever": GIVES_UP,
        "events from after on (>=): repeats the client's last event": NEWS,
        "ignores the history: waits for the next publish even with news waiting": NEWS,
        "answers with the events read before the wait: the news it woke for is left out": WAITS,
    },
    "01.2": {
        "reconnects from the start: repeats events": RESUMES,
        "reconnects one past the last id: skips events": RESUMES,
        "gives up when the connection drops": RESUMES,
        "resumes from the number of events so far: assumes ids 1, 2, 3": ANY_IDS,
        "returns the ids, not the events": AS_SENT,
        "returns the raw JSON text of each event": AS_SENT,
        "checks count only between connections": STOPS,
        "events[-1] when a connection brought nothing: IndexError": EMPTY_CONNECTION,
        "gives up when a connection brings nothing": EMPTY_CONNECTION,
        "stops on a normal close (1000)": RESUMES,
        "cheat: makes up events 1 to count": ANY_IDS,
        "resumes after the last connection's last event: an empty connection restarts": (
            EMPTY_CONNECTION
        ),
        "reads each connection to its close, then keeps the first count events": AT_COUNT,
        "a second with no message ends the stream: returns what it has": LATER_NEWS,
        "while len(events) <= count: count 0 still reads an event": STOPS,
        "reconnects with ?after=0 and drops the events it already has": RESUMES,
        "cheat: short-polls GET /feed/poll beside the WebSocket instead": RESUMES,
        "recv() and except ConnectionClosedError: a 1000 or 1001 close raises through": RESUMES,
    },
    "02.1": {
        "int() on text that is not a number ends the game": NOT_A_NUMBER,
        "out of guesses closes with 1000": LOSE,
        "higher and lower swapped": HINTS,
        "closes before accept: the client sees HTTP 403, not the code": HINTS,
        "str.isdigit(): a negative guess is 'not a whole number'": HINTS,
        "float(): '4.2' and '1e3' count as guesses": NOT_A_NUMBER,
        "out of guesses at the fourth wrong guess": HINTS,
        "out of guesses at the sixth wrong guess": LOSE,
        "the fifth guess loses even when it is right": LAST_CHANCE,
        "the fifth wrong guess still gets a hint before the close": LOSE,
        "closes a win with 1000 and no reason": WIN,
        "loses with reason 'Game over'": LOSE,
        "cheat: the secret is always 42": HINTS,
        "counts wrong guesses in a module-level variable, shared by every game": OWN_GAME,
        "no return after the close: the next receive_text() raises": WIN,
        "counts wrong guesses per secret in a module-level dict": OWN_GAME,
        "counts distinct wrong guesses: a repeated guess is free": LOSE,
    },
    "02.2": {
        "receive_json(): text that is not JSON ends the connection": NOT_JSON,
        "division by zero raises": ZERO,
        "a binary frame is treated as bad JSON": BINARY,
        "floor division: 7 / 2 is 3": RESULTS,
        "sub computes b - a": RESULTS,
        "every ValidationError is invalid_json": WRONG_SHAPE,
        "every ValidationError is invalid_message, not-JSON text too": NOT_JSON,
        "b = 0 is an error for every op": RESULTS,
        "decodes a binary frame and answers it": BINARY,
        "error frames carry no message": ERROR_FRAME,
        "integers only: 2.5 is invalid": RESULTS,
        "Calculation(**json.loads(text)): JSON that is not an object crashes": WRONG_SHAPE,
        "cheat: answers 6 and 3's results whatever the operands": RESULTS,
        "not message.get('text'): an empty text frame is taken for a binary one": NOT_JSON,
        "rounds every result to 2 decimals": RESULTS,
        "closes on a binary frame with 1007 (invalid payload), not 1003": BINARY,
        "no loop: answers the first request, then returns": RESULTS,
    },
    "03.1": {
        "the seed's: a dead connection raises out of the loop": DEAD,
        "sends to the sender too": OTHERS,
        "skips a dead connection but keeps it": DEAD,
        "iterates the live list while removing from it: the next member is skipped": DEAD,
        "catches only WebSocketDisconnect: a member the server closed raises through": CLOSED,
        "stops at the first dead connection": DEAD,
        "gather() without return_exceptions: the first failure ends the sender's endpoint": DEAD,
        "prunes with connections.remove: a member already removed raises ValueError": MEANWHILE,
        "excludes the sender by removing it from the hub": OTHERS,
        "cheat: skips the newest connection, as if the sender were always the last": OTHERS,
        "deletes the failed positions after the loop: the wrong member goes": CLOSED,
        "puts back the list copied before the sends: joins and leaves meanwhile are undone": (
            JOINS_MEANWHILE
        ),
        "prunes by client_state before sending: a dead one that looks open raises": DEAD,
        "sends in tasks it never awaits: a failed send prunes nothing": DEAD,
        "cheat: skips the oldest connection, as if the sender were always the first": OTHERS,
    },
    "03.2": {
        "an unbounded queue: a stalled client is never cut off": FULL,
        "a full queue drops the message but keeps the client": STALLED,
        "cuts off with 1000 instead of 4008": CUT_OFF,
        "send() still says True after the cut-off": FULL,
        "cuts off one message early: when the queue has one free slot left": KEEPS_UP,
        "counts every message sent, not the ones still queued": KEEPS_UP,
        "closes with reason 'too slow'": CUT_OFF,
        "does not keep the close task in self.closing": CUT_OFF,
        "no cut-off flag: every send to a full queue starts another close": CUT_OFF,
        "queues with a put() task: the queue never looks full": FULL,
        "the writer sends one message and stops": IN_ORDER,
        "the writer drains what is queued, then returns": IN_ORDER,
        "cuts off with 1008 (policy violation) instead of 4008": CUT_OFF,
        "keeps True in self.closing, not the close task": CUT_OFF,
        "a full queue drops its oldest message to make room: never cuts off": FULL,
        "qsize() > maxsize: never true, so put_nowait raises QueueFull out of send()": FULL,
        "the send that cuts off still says True: False only from the next one": FULL,
    },
    "03.3": {
        "no cap: the wait doubles for ever": CAPPED,
        "2**n unbounded: OverflowError past retry 1023": CAPPED,
        "caps after the jitter: every late retry waits exactly cap": CAPPED,
        "caps the multiplier, not the wait: base × min(cap, 2ⁿ)": CAPPED,
        "equal jitter: half the bound, plus a random half": FULL_JITTER,
        "no jitter: always the whole bound": FULL_JITTER,
        "retry n waits up to base·2ⁿ⁺¹: the first retry already doubled": EXPONENTIAL,
        "a fixed delay: rng() × base before every retry": EXPONENTIAL,
        "jitter from random.random(), not the rng it is given": EXPONENTIAL,
        "waits before the first try too": AT_ONCE_CONNECTED,
        "starts sleep(delay) as a task and does not await it: never waits": RETRIES,
        "time.sleep: blocks the event loop while it waits": RETRIES,
        "waits after the last failure too, then raises": RAISES_LAST,
        "gives up quietly: returns None after the last failure": RAISES_LAST,
        "raises a new RuntimeError, not the last error": RAISES_LAST,
        "raises the first error, not the last": RAISES_LAST,
        "retries for ever, whatever attempts says": RAISES_LAST,
        "attempts retries after the first try: one call too many": RAISES_LAST,
        "retries every exception, a bug in connect() too": CONNECTION_ERRORS,
        "retries ConnectionRefusedError only: an HTTP 503 ends it": REAL_SERVER,
    },
}


@pytest.fixture
def reports(exercise_reports: dict[tuple[str, str], Report]) -> dict[tuple[str, str], Report]:
    return exercise_reports  # every mutant, checked once for the whole session


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_mutant_names_the_check_that_rejects_it(exercise_id: str) -> None:
    # The reference cheats (mutants/references.py) are rejected by the reference guard instead.
    lesson = {b for b in MUTANTS[exercise_id] if not b.startswith("cheat: calls the course's")}
    assert set(KILLED_BY[exercise_id]) == lesson


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
