"""Which check rejects each of lessons 07 and 09's mutants: each mistake is caught where it is made.

``test_checks.py`` asks only that a mutant fails *some* check. Here each mutant names the
check that must fail it (by a part of the check's name), so a check that stops pinning its
behaviour shows up even when another check still happens to fail the mutant. Also the name
rule's own pieces (``checks.plain_names``): the oracle and the generated names.
"""

from __future__ import annotations

import unicodedata

import pytest
from exercise_reports import TIMEOUT
from hypothesis import given, settings
from mutants import MUTANTS

from course_server import checks
from course_server.checks import Report, Status, plain_names

pytestmark = pytest.mark.timeout(TIMEOUT)  # the first test may evaluate every exercise

KILLED_BY: dict[str, dict[str, str]] = {
    "07.1": {
        "publishes without keeping the event in the stream": "ids 1, 2, 3",
        "keeps every event: no MAXLEN": "keeps the last 20",
        "trims roughly (MAXLEN ~): more than HISTORY stay": "keeps the last 20",
        "publishes the text alone, without its id": "ids 1, 2, 3",
        "INCR, XADD and PUBLISH as three commands: another process gets in between": "paused",
        "counts ids in the process's memory, not in Redis": "ids go on",
        "builds the JSON by joining strings: a quote or newline breaks it": "quotes",
        "publishes the id as text: {'id': '7'}": "ids 1, 2, 3",
        "lets Redis choose the entry id (*): no 0-N to read from": "ids 1, 2, 3",
        "trims before adding: HISTORY + 1 stay": "keeps the last 20",
        "puts the text into the script's source: a quote breaks the Lua": "quotes",
        "one counter for every room": "ids go on",
        "the next id is the stream's length + 1: wrong once it is trimmed": "ids go on",
        "returns the entry id '0-N', not N": "ids 1, 2, 3",
        "three commands under an asyncio.Lock: one process's lock holds no other back": "paused",
        "reads the counter once, then counts in memory": "ids go on",
        "strips the text before publishing: its own spaces are lost": "quotes",
        "keeps the event's JSON in the stream under 'data', not its text under 'text'": "ids 1, 2",
        "entry ids N-0, not 0-N": "ids 1, 2, 3",
        "the script returns nothing: publish returns None, not the id": "ids 1, 2, 3",
        "INCR, then XADD and PUBLISH in a MULTI: the INCR is a step of its own": "paused",
    },
    "07.2": {
        "reads the stream from last_id itself: the last event seen comes again": "after last_id",
        "pub/sub only: what happened while away is never read": "after last_id",
        "never fills a gap: what pub/sub dropped stays lost": "pub/sub dropped",
        "no dedupe: an event that comes twice is yielded twice": "comes twice",
        "reads the stream, then subscribes: an event in between is lost": "subscribe first",
        "reads a gap up to the latest entry, then yields the new event again": "pub/sub dropped",
        "gives up after a quiet second: get_message(timeout=1) returned None": "quiet room",
        "compares ids as text: '10' comes before '9'": "comes twice",
        "forgets what the backlog yielded: it comes again as a gap": "after last_id",
        "reads the gap newest first (XREVRANGE)": "after last_id",
        "reads one event of a gap (COUNT 1)": "pub/sub dropped",
        "yields the message's JSON text, not the event": "after last_id",
        "reads the stream for every live event, gap or not": "without reading the stream",
        "subscribes, but reads the stream before Redis confirms it": "subscribe first",
        "the id from the entry id's first part: 0 for every event": "after last_id",
        "ranges without the '0-': (N is N-0, past every entry": "after last_id",
        "last_id is not moved on by live events: the next one reads a gap again": "after last_id",
        "dedupes by text: a second event that says the same is dropped": "after last_id",
        "reads the stream in one page of 10 (COUNT 10): a longer backlog is cut": "after last_id",
        "reads a gap from the last id seen itself: that event comes again": "pub/sub dropped",
    },
    "09.1": {
        "never pings: closes a quiet client without asking": "quiet client is pinged",
        "pings but never closes: the chapter's heartbeat": "does not answer",
        "closes with 1011, the code for a server fault": "does not answer",
        "closes as it pings: no time to answer": "does not answer",
        "a pong is no sign of life: only other messages count": "answers every ping",
        "echoes the pong back": "a pong gets no answer",
        "closes with the right code but no reason": "does not answer",
        "closes with a reason of its own, 'timeout'": "does not answer",
        "closes with 1000, as if all went well": "does not answer",
        "after a ping only a pong answers: a message is echoed, the clock runs on": "any message",
        "pings once: after the first pong it only echoes": "pinged again",
        "pings with JSON, as the chapter's heartbeat did": "quiet client is pinged",
        "answers pings but echoes nothing": "keeps talking",
        "goes on reading after it closed: receive on a closed socket raises": "does not answer",
        "only a pong is a sign of life: a talking client is pinged and closed": "keeps talking",
        "pings on a schedule, even while the client talks": "keeps talking",
        "closes with the reason capitalized: 'Heartbeat timeout'": "does not answer",
        "closes with 4008, a typo for 4408": "does not answer",
        "pings with a binary frame: the client hears b'ping', not the text": "quiet client",
    },
    "09.2": {
        "$ matches before a newline at the end": "control characters",
        "re.match with no end anchor: a good start is enough": "spaces, markup",
        "ASCII letters only": "ordinary names in many scripts",
        "counts bytes, not characters": "every ordinary name",
        "printable means safe: spaces and markup pass": "spaces, markup",
        "quotes the name back: too long for a close frame": "a reason is short",
        "the old rule, [\\w.-]{1,32}: a filler is a letter to \\w": "filler characters",
        "judges the name as it came, not its NFKC form": "NFKC form: ",
        "counts the length before NFKC": "too long",
        "a denylist: refuses control, format, private-use, unassigned and spaces": "markup",
        "letters and digits as \\w sees them (str.isalnum): numerals and marks pass": "markup",
        "only U+3164 is a filler": "filler characters",
        "only letters have a script: a digit of another script passes": "mix scripts",
        "one script, kanji and kana apart: Japanese names are refused": "ordinary names in many",
        "0-9 have a script too: a Latin name with a digit is mixed": "ordinary names in many",
        "puts the name in the reason": "a reason is short",
        "returns whether the name is valid, not what is wrong with it": "ordinary names in many",
        "a cheat: ASCII names, plus the examples it has seen": "every ordinary name",
        "< for <=: a name of exactly 32 characters is refused": "ordinary names in many",
        "range(1, 33) read as 'up to 33': a name of 33 characters passes": "too long",
        "any dash passes (category Pd): an en dash or a hyphen look-alike too": "spaces, markup",
        "kanji and kana are one script, but ー (KATAKANA-HIRAGANA) is apart": "ordinary names in",
        "a script is the first two words of a name: LATIN CAPITAL and LATIN SMALL differ": (
            "ordinary names in many"
        ),
    },
    "09.3": {
        "substring match: any listed origin inside the header lets it in": "look-alikes",
        "startswith: a listed origin as a prefix lets it in": "look-alikes",
        "endswith on the host: subdomains, and evil-example.com, pass": "look-alikes",
        "a regular expression per entry: its dots match any character": "look-alikes",
        "case-sensitive: Chat.Example.COM on the list refuses chat.example.com": "case does not",
        "compares host and port only: http passes where https is listed": "scheme and the port",
        "compares scheme and host only: any port passes": "scheme and the port",
        "Origin: null is let in, like no Origin": "Origin: null",
        "no Origin is refused: scripts and servers are locked out": "no Origin header",
        "reads websocket.headers['origin']: no Origin header raises KeyError": "no Origin header",
        "accepts, then closes with 1008: the page had its connection": "refused before accept",
        "refuses with 401, as if a login could help": "refused before accept",
        "compares hosts only, scheme and port both ignored": "scheme and the port",
        "lowercases the Origin but not the list: Chat.Example.COM never matches": "case does not",
        "no return after the denial: it goes on to accept and raises": "refused before accept",
        "echoes one message, then returns: the connection closes": "a listed origin is let in",
    },
    "09.4": {
        "closes first, then sends the queue: the frames are lost": "all reach it",
        "sends the queue but never closes": "then the client is closed",
        "pops the newest frame first: the queue goes out backwards": "all reach it",
        "closes with 1000, as if the conversation were over": "then the client is closed",
        "closes with 1006, which no close frame may carry": "then the client is closed",
        "closes with 1001 but no reason": "then the client is closed",
        "lets the TimeoutError out when time is up": "holds shutdown()",
        "no timeout: a client that stopped reading holds the shutdown for ever": "holds shutdown()",
        "one connection after another: a stuck one holds all behind it": "no one else back",
        "returns inside the loop: only the first connection is closed": "not only the first",
        "gather without return_exceptions: a client that left makes shutdown raise": "already left",
        "a TaskGroup: a client that left cancels everyone else's goodbye": "already left",
        "if for while: only the oldest queued frame is sent": "all reach it",
        "five seconds, not SHUTDOWN_TIMEOUT: a stuck client holds the shutdown too long": (
            "holds shutdown()"
        ),
        "when time is up, flushes what is left again, with no bound": "holds shutdown()",
    },
}
"""Exercise → mutant's bug → a part of the name of the check that must reject it."""

CASES = [(exercise, bug) for exercise, bugs in KILLED_BY.items() for bug in bugs]


@pytest.fixture
def reports(exercise_reports: dict[tuple[str, str], Report]) -> dict[tuple[str, str], Report]:
    return exercise_reports  # every mutant and solution, checked once for the whole session


def the_check(exercise: str, part: str) -> str:
    (name,) = [c.name for c in checks.get(exercise).checks if part in c.name]
    return name


@pytest.mark.parametrize("exercise", list(KILLED_BY))
def test_every_hand_written_mutant_names_the_check_that_kills_it(exercise: str) -> None:
    cheats = {bug for bug in MUTANTS[exercise] if bug.startswith("cheat: calls the")}
    assert set(MUTANTS[exercise]) - cheats == set(KILLED_BY[exercise])
    for part in KILLED_BY[exercise].values():
        the_check(exercise, part)  # exactly one check has this in its name


@pytest.mark.parametrize("exercise", list(KILLED_BY))
def test_each_exercise_has_at_least_eight_mistakes_to_catch(exercise: str) -> None:
    assert len(KILLED_BY[exercise]) >= 8


@pytest.mark.parametrize("exercise", list(KILLED_BY))
def test_the_solution_passes_every_check(
    reports: dict[tuple[str, str], Report], exercise: str
) -> None:
    report = reports[exercise, "solution"]
    assert report.passed, str(report)


@pytest.mark.parametrize(("exercise", "bug"), CASES)
def test_the_named_check_rejects_the_mutant(
    reports: dict[tuple[str, str], Report], exercise: str, bug: str
) -> None:
    name = the_check(exercise, KILLED_BY[exercise][bug])
    (verdict,) = [v for v in reports[exercise, bug].verdicts if v.check == name]
    assert verdict.status in {Status.FAILED, Status.TIMED_OUT}, str(reports[exercise, bug])


# --- the name rule's pieces -------------------------------------------------------------------


@pytest.mark.parametrize("script", list(plain_names.ALPHABETS))
def test_an_alphabet_holds_plain_letters_of_its_one_script(script: str) -> None:
    alphabet = plain_names.ALPHABETS[script]
    assert all(unicodedata.normalize("NFKC", c) == c for c in alphabet)
    assert {unicodedata.category(c)[0] for c in alphabet} == {"L"}
    assert {plain_names.script(c) for c in alphabet} == {script.upper()}


@pytest.mark.parametrize("kind", list(plain_names.UNSAFE))
def test_the_oracle_finds_each_unsafe_character_in_an_ordinary_name(kind: str) -> None:
    for char in plain_names.UNSAFE[kind]:
        assert plain_names.unsafe(f"alice{char}bob") is not None, plain_names.describe(char)


def test_the_oracle_finds_a_mix_of_scripts_but_not_japanese() -> None:
    assert plain_names.unsafe("pаypal") is not None  # a Cyrillic а
    assert plain_names.unsafe("g০০gle") is not None  # Bengali zeros
    assert plain_names.unsafe("山田さくら") is None
    assert plain_names.unsafe("ルーシー_2") is None


def test_the_oracle_measures_the_nfkc_form() -> None:
    assert plain_names.unsafe("ｂｏｂ") is None
    assert plain_names.unsafe("a" * 31 + "ﬁ") is not None
    assert plain_names.unsafe("ﷺ") is not None


@settings(max_examples=200, derandomize=True, database=None)
@given(plain_names.ordinary_names())
def test_every_ordinary_name_is_plain(name: str) -> None:
    assert plain_names.unsafe(name) is None
