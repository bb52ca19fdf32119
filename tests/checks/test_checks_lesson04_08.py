"""Which check catches which mistake, for exercises 04.1 to 08.2 and 10.1: each mutant fails it.

``test_checks`` asks only that a mutant fail *some* check. Here each mutant of these lessons
names the check written to catch its mistake, so a check that stops pinning its behaviour (or a
mutant that stops making its mistake) shows up by name.
"""

from __future__ import annotations

import pytest
from exercise_reports import TIMEOUT
from mutants import MUTANTS

from course_server import checks
from course_server.checks import Report

pytestmark = pytest.mark.timeout(TIMEOUT)  # the first test may evaluate every exercise

# Exercise 04.3's checks, by name: the page's JavaScript in Chromium.
IN_ORDER = "shows each message as 'user: text', one list item each, in order"
MARKUP = "markup in a message shows as text: no element is made, no handler runs"
PARSER = "never hands text to the HTML parser (innerHTML, insertAdjacentHTML, …)"
RESUMES = "after a drop, resumes with last_id: every message shown once, none lost"
PACED = "waits between attempts while the server refuses, and keeps trying"
# Exercise 05.1's check that a room of five hears every join and leave.
EVERYONE = "every member of the room hears a join and a leave, however many they are"

# Exercise 06.2's refusals, one check for every token that must not get in.
REFUSED = "a missing, expired, forged, unsigned or wrong-audience token is refused before accept"
# Exercise 08.2's bare fields: a line with no colon.
BARE = "a line with no colon is a field with an empty value"
# Exercise 10.1's checks, by name.
EVERY = "every receiver gets every message, in order, a slow one too"
OWN = "each broadcast sends its own message, not an earlier one's text"
ONCE = "encodes each message once, whatever the number of receivers"

KILLED_BY: dict[str, dict[str, str]] = {
    "04.1": {
        "resends the last message the client saw (>= instead of >)": (
            "a client that is up to date gets nothing old"
        ),
        "counts by position in the deque, not by id": (
            "counts by id, not by position, once old messages are dropped"
        ),
        "always says complete": "says when messages were lost, and sends what is left",
        "off by one on complete: the oldest held message counts as a loss": (
            "nothing is lost when the first message held is the next one"
        ),
        "assumes ids start at 1: a history that is not full lost nothing": (
            "right for every last_id, whatever id the history starts at, full or not"
        ),
        "reads history[0] even when the history is empty": (
            "an empty history has lost nothing and has nothing to send"
        ),
        "pops what the client has seen off the shared history": (
            "leaves the history as it was: other clients read it too"
        ),
        "complete only when last_id is still in the history": (
            "nothing is lost when the first message held is the next one"
        ),
        "counts back from the newest id, as if the history were always full": (
            "right for every last_id, whatever id the history starts at, full or not"
        ),
        "shaped like the prompt's example: complete unless last_id is 1": (
            "says when messages were lost, and sends what is left"
        ),
        "an empty history says complete=False: nothing held, so nothing confirmed": (
            "an empty history has lost nothing and has nothing to send"
        ),
        "the newest n = newest id - last_id: list(history)[-0:] when up to date": (
            "a client that is up to date gets nothing old"
        ),
        "newest first: iterates reversed(history)": "sends exactly the messages after last_id",
        "islice from last_id - oldest id + 1: ValueError once messages are lost": (
            "says when messages were lost, and sends what is left"
        ),
    },
    "04.2": {
        "starts empty": "a full bucket lets a burst through, then refuses",
        "no cap: an idle bucket fills past burst": "never holds more than burst tokens",
        "a fixed window: full again every second": (
            "refills at rate tokens per second, fractions included"
        ),
        "whole tokens only: fractions of a token are lost": (
            "refills at rate tokens per second, fractions included"
        ),
        "a refused event still takes a token": (
            "a refused call neither loses nor counts twice the tokens flowing in"
        ),
        "a refusal keeps the time of the last refill: the same seconds refill twice": (
            "a refused call neither loses nor counts twice the tokens flowing in"
        ),
        "a refusal moves the time on but drops the tokens that flowed in": (
            "a refused call neither loses nor counts twice the tokens flowing in"
        ),
        "the last token is never used: refuses at tokens <= 1": (
            "a full bucket lets a burst through, then refuses"
        ),
        "caps before adding the flow: min(burst, tokens) + flow": (
            "never holds more than burst tokens"
        ),
        "reads time.monotonic(), not the clock it is given": (
            "refills at rate tokens per second, fractions included"
        ),
        "rate read as seconds per token: elapsed / rate": (
            "refills at rate tokens per second, fractions included"
        ),
        "shaped like the check's example: rate 2 and burst 5 written in": (
            "a full bucket lets a burst through, then refuses"
        ),
        "refuses only at tokens <= 0: a fraction of a token lets a call through": (
            "refills at rate tokens per second, fractions included"
        ),
        "caps after taking the token: min(burst, tokens + flow - 1)": (
            "never holds more than burst tokens"
        ),
        "counts from totals: min(burst, burst + elapsed × rate - allowed so far)": (
            "never holds more than burst tokens"
        ),
        "a refusal empties the bucket: the fraction that flowed in is lost": (
            "a refused call neither loses nor counts twice the tokens flowing in"
        ),
    },
    "04.3": {
        "renders with innerHTML": MARKUP,
        "renders with insertAdjacentHTML": MARKUP,
        "escapes with replace(), which replaces only the first <, then innerHTML": MARKUP,
        "escapes every &, < and > by hand, then innerHTML": PARSER,
        "the user's name in bold through innerHTML, the text through textContent": MARKUP,
        "newest first: prepends each message": IN_ORDER,
        "reconnects without last_id": RESUMES,
        "always sends ?last_id=, null before the first message": IN_ORDER,
        "builds the URL once: every reconnect asks for what the first connection did": RESUMES,
        "resumes with last_id but shows every frame: a message sent twice shows twice": RESUMES,
        "skips ids below last_id but keeps last_id itself (< for <=)": RESUMES,
        "asks for the next id: ?last_id=lastId + 1 skips a message": RESUMES,
        "never reconnects": RESUMES,
        "reconnects at once, in a tight loop against a server that refuses": PACED,
        "reconnects on error and on close: two attempts for each refused one": PACED,
        "gives up after three failed attempts": PACED,
    },
    "05.1": {
        "switching joins the new room without leaving the old one": (
            "switching rooms leaves the old room"
        ),
        "the joiner hears about itself": "joining a room tells its members, not the joiner",
        "empty rooms are kept: the seed's leak": "the last member out deletes the room",
        "rejoining the same room leaves and joins again": (
            "joining the room you are in changes nothing"
        ),
        "leave() raises KeyError for a member in no room": (
            "leaving when in no room changes nothing"
        ),
        "a member leaving deletes the room, others and all": (
            "a room keeps its other members when one leaves"
        ),
        "leave() keeps room_of: a member that left cannot come back": (
            "a member that left can join the same room again"
        ),
        "JOINED goes to the whole lobby, not the room": "members of other rooms hear nothing of it",
        "switching leaves the old room by hand and keeps it when it empties": (
            "the last member out deletes the room"
        ),
        "the leaver hears LEFT too: told before it is taken out": (
            "a room keeps its other members when one leaves"
        ),
        "JOINED goes to one member of the room: next(iter(members))": EVERYONE,
        "LEFT goes to one member left behind: next(iter(members))": EVERYONE,
        "rooms[room] = {member}: joining replaces the room's members": (
            "joining a room tells its members, not the joiner"
        ),
        "switching takes the member out of the old room without telling it": (
            "switching rooms leaves the old room"
        ),
        "deletes the room when one member is left: len(members) <= 1": (
            "a room keeps its other members when one leaves"
        ),
        "tells the room only when it has two members or more: len(members) > 1": (
            "joining a room tells its members, not the joiner"
        ),
    },
    "06.1": {
        "no deadline: a silent client waits forever": (
            'silence past the deadline closes with 4002 "Authentication timeout"'
        ),
        "expired tokens are let in": 'a bad or expired token closes with 4003 "Invalid token"',
        "a bad token closes with 4001, like a missing one": (
            'a bad or expired token closes with 4003 "Invalid token"'
        ),
        "the seed's way: the token in the query string, closed before accept": (
            "a valid token in the first message is welcomed, and the connection stays"
        ),
        "receive_json(): a first message that is not JSON crashes the endpoint": (
            'a first message that is not an auth frame closes with 4001 "Authentication required"'
        ),
        "receive_text(): a binary first frame crashes the endpoint (1011)": (
            'a binary first frame closes with 4001 "Authentication required"'
        ),
        "the token's signature is not checked": (
            'a bad or expired token closes with 4003 "Invalid token"'
        ),
        "close reasons swapped between 4001 and 4003": (
            'a bad or expired token closes with 4003 "Invalid token"'
        ),
        "the timeout's reason is left out": (
            'silence past the deadline closes with 4002 "Authentication timeout"'
        ),
        "shaped like the prompt's example: welcomes everyone as alice": (
            "a valid token in the first message is welcomed, and the connection stays"
        ),
        "the deadline wraps the whole session: users are cut off after AUTH_TIMEOUT": (
            "the deadline is for the first message only: a quiet user stays in"
        ),
        "every message has AUTH_TIMEOUT to come, not only the first": (
            "the deadline is for the first message only: a quiet user stays in"
        ),
        "json.loads and dict lookups: a list or null first frame crashes (1011)": (
            'a first message that is not an auth frame closes with 4001 "Authentication required"'
        ),
        "no return after closing for a bad token: the code goes on and raises": (
            'a bad or expired token closes with 4003 "Invalid token"'
        ),
        "a deadline in milliseconds read as seconds: 0.1 s, not AUTH_TIMEOUT": (
            "a first message sent just before the deadline is still in time"
        ),
        "tells a failed client why in a message, then closes": (
            'a first message that is not an auth frame closes with 4001 "Authentication required"'
        ),
        "decodes a binary first frame as text: an auth frame in bytes gets in": (
            'a binary first frame closes with 4001 "Authentication required"'
        ),
        "no return after the timeout's close: the code goes on and raises": (
            'silence past the deadline closes with 4002 "Authentication timeout"'
        ),
        "trusts the token's own alg header: an unsigned token (alg none) crashes it": (
            'a bad or expired token closes with 4003 "Invalid token"'
        ),
        "the welcome names the user under 'user', not 'user_id'": (
            "a valid token in the first message is welcomed, and the connection stays"
        ),
        "decodes the token itself, no claim required: no exp, no sub gets in": (
            'a bad or expired token closes with 4003 "Invalid token"'
        ),
    },
    "06.2": {
        "trusts a ?user= the client adds over the token's sub": (
            "the user comes from the token, not from a ?user= the client adds"
        ),
        "no expiry check: an expired token still gets in": REFUSED,
        "no audience: a token for another service gets in": REFUSED,
        "reads the claims unverified: an unsigned (alg none) or forged token gets in": REFUSED,
        "accepts, then checks: the handshake succeeds and a close follows": REFUSED,
        "a missing token is let in as 'anonymous'": REFUSED,
        "no 'require': a token without an expiry never expires": REFUSED,
        "no 'sub' required: a token that names nobody is let in as 'None'": REFUSED,
        "catches only expiry, signature and audience errors: an unsigned token is a 500": REFUSED,
        "trusts the token's own alg header: an unsigned token (alg none) is a 500": REFUSED,
        "refuses with HTTPException(401): the client sees 401, not 403": REFUSED,
        "a leeway of an hour for clock skew: a token expired minutes ago gets in": REFUSED,
    },
    "08.1": {
        "reads Last-Event-ID from the query string, so never sees the header": (
            "Last-Event-ID: N resumes at N + 1"
        ),
        "resends the event the client already has": "Last-Event-ID: N resumes at N + 1",
        "ignores Last-Event-ID: starts over": "a client that has seen every event gets none again",
        "unnamed events": "events 1 to count, each named square, with its id and data",
        "retry on every event": "only the first event carries retry: 2000",
        "the last event is left out: range(first, count)": (
            "events 1 to count, each named square, with its id and data"
        ),
        "retry only on a fresh stream's first event, not a resumed one's": (
            "Last-Event-ID: N resumes at N + 1"
        ),
        "ids start at 0": "events 1 to count, each named square, with its id and data",
        "resumes one event late: Last-Event-ID N starts at N + 2": (
            "Last-Event-ID: N resumes at N + 1"
        ),
        "data JSON-encoded by hand: the client reads a string": (
            "events 1 to count, each named square, with its id and data"
        ),
        "shaped like the prompt's example: always 5 events": (
            "events 1 to count, each named square, with its id and data"
        ),
        "no ids: a browser cannot resume": (
            "events 1 to count, each named square, with its id and data"
        ),
        "retry in seconds: retry=2, not 2000 milliseconds": (
            "only the first event carries retry: 2000"
        ),
        "retry on the last event, not the first": "only the first event carries retry: 2000",
        "a Last-Event-ID past the end starts over: 'an id from an old stream'": (
            "a client that has seen every event gets none again"
        ),
        "clamps the start to count: a client that has it all gets the last event again": (
            "a client that has seen every event gets none again"
        ),
        "Header(convert_underscores=False): looks for a last_event_id header, never sent": (
            "Last-Event-ID: N resumes at N + 1"
        ),
        "caps the count at 10, to be safe": (
            "events 1 to count, each named square, with its id and data"
        ),
        "remembers the last id sent in a module variable, not the client's header": (
            "Last-Event-ID: N resumes at N + 1"
        ),
        "a live stream that never ends: a keep-alive after the last event": (
            "events 1 to count, each named square, with its id and data"
        ),
    },
    "08.2": {
        "keeps only the last data line": "joins the data lines of one event with newlines",
        "reads comments as data": "skips comments, such as keep-alive pings",
        "strips every space around the value": (
            "the colon needs no space after it; one space is dropped, no more"
        ),
        "forgets the id after each event": "an event without an id keeps the last id seen",
        "dispatches events with no data": (
            "a blank line after no data dispatches nothing, and forgets the event name"
        ),
        "an event name outlives a blank line with no data": (
            "a blank line after no data dispatches nothing, and forgets the event name"
        ),
        "splits only on ': ', so data:x is no data line": (
            "the colon needs no space after it; one space is dropped, no more"
        ),
        "str.splitlines(): \\x85, \\u2028 and others end lines too": (
            "no other character ends a line (not as str.splitlines() does)"
        ),
        "splits on LF only: a lone CR ends no line": "CR, LF and CRLF each end a line",
        "splits on CR and LF alike: CRLF ends two lines": "CR, LF and CRLF each end a line",
        "the end of the text dispatches the event in progress": (
            "an event the stream's end cuts off is not dispatched"
        ),
        "keeps the byte order mark": "a byte order mark at the very start is dropped",
        "drops every byte order mark, not only the first": (
            "a byte order mark at the very start is dropped"
        ),
        "an id with a NULL character still counts": (
            "an id that contains a NULL character is ignored"
        ),
        "field names are trimmed and lowercased": (
            "ignores other fields: retry, unknown names, names with spaces or capitals"
        ),
        "an event whose data is empty is not dispatched: if joined:": BARE,
        "splits on every colon: a value's own colons cut it short": (
            "the colon needs no space after it; one space is dropped, no more"
        ),
        "the event name is kept for the next event": (
            "reads event, data and id from a real stream; event defaults to message"
        ),
        "an empty event line keeps the name set before it": BARE,
        "a bare id line is ignored, not an empty id": BARE,
        "the id is None before any id line, not ''": (
            "an event without an id keeps the last id seen"
        ),
        "strips trailing newlines from the data: empty data lines at the end vanish": (
            "joins the data lines of one event with newlines"
        ),
        "skips lines without a colon": BARE,
        "an event's id is the last id when its first data line came": (
            "an event without an id keeps the last id seen"
        ),
        "splits the text into events on blank lines first, LF only": (
            "CR, LF and CRLF each end a line"
        ),
    },
    "10.1": {
        "encodes per receiver: right, but no better than the naive fan-out": ONCE,
        "gives a slow receiver 50 ms, then drops its message silently": EVERY,
        "fire-and-forget tasks: a slow receiver's messages come late and reordered": EVERY,
        "caches the text in a module variable: every broadcast sends the first one": OWN,
        "ignores the encode it is given: json.dumps once, which the count never sees": ONCE,
        "sends the message itself, not its text": OWN,
        "skips the first receiver: receivers[1:]": EVERY,
        "gives every send a second, then drops it: a slow receiver loses messages": EVERY,
        "gathers the sends but does not await them: they finish after it returns": EVERY,
        "waits for the sends at most 0.5 s in all (asyncio.wait), then goes on": EVERY,
        "encodes once more to log the message's size": ONCE,
    },
}

CASES = [(exercise, bug) for exercise, bugs in KILLED_BY.items() for bug in bugs]


@pytest.fixture
def reports(exercise_reports: dict[tuple[str, str], Report]) -> dict[tuple[str, str], Report]:
    return exercise_reports  # every mutant and solution, checked once for the whole session


def lesson_mutants(exercise_id: str) -> set[str]:
    """The exercise's mutants from its lesson's module (not the shared reference cheats)."""
    module = f"mutants.lesson{exercise_id[:2]}"
    return {bug for bug, m in MUTANTS[exercise_id].items() if m.__module__ == module}


@pytest.mark.parametrize("exercise_id", list(KILLED_BY))
def test_every_mutant_of_the_exercise_names_its_check(exercise_id: str) -> None:
    assert set(KILLED_BY[exercise_id]) == lesson_mutants(exercise_id)
    names = {check.name for check in checks.get(exercise_id).checks}
    assert set(KILLED_BY[exercise_id].values()) <= names


@pytest.mark.parametrize(("exercise_id", "bug"), CASES)
def test_the_mutant_fails_the_check_named_for_its_mistake(
    reports: dict[tuple[str, str], Report], exercise_id: str, bug: str
) -> None:
    report = reports[exercise_id, bug]
    (verdict,) = [v for v in report.verdicts if v.check == KILLED_BY[exercise_id][bug]]
    assert not verdict.passed, str(report)
