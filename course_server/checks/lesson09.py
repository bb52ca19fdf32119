"""Checks for lesson 09's exercises: a heartbeat, safe names, an Origin allow-list, a shutdown.

The heartbeat's timings are the notebook's (``PING_AFTER``, ``PONG_WITHIN`` and
``HEARTBEAT_TIMEOUT`` below must stay equal to the exercise cell's). They are half a second so
the checks are quick, and long enough that a check's own client, on a busy machine, answers a
ping in time. A check measures only what cannot come early (a ping or a close before its time);
"late" gets a generous margin.

09.3 serves the learner's endpoint with an allow-list of its own (drawn, ``cases.seeded``) in
``app.state.allowed_origins`` and opens real handshakes with each ``Origin``. 09.4 serves an
endpoint that keeps every connection (a ``Connection`` shaped like the notebook's), connects
real clients (one that stops reading, one that vanishes), queues frames for them and runs the
learner's ``shutdown`` on the server's loop, with a bound of its own (``shut_down``), so a
shutdown that never returns fails with a hint instead of holding the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import socket
import threading
import time
import unicodedata
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import hypothesis
import hypothesis.errors
from fastapi import WebSocket
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from course_server.checks import CheckFailed, exercise, expect, plain_names
from course_server.checks.cases import seeded
from course_server.checks.harness import Harness
from course_server.checks.plain_names import describe
from course_server.checks.talk import WAIT, dial, receive
from course_server.clients.misbehave import stalled_reader
from course_server.clients.websocket import attempt
from course_server.lab.waiting import eventually
from course_server.lessons.closing import MAX_REASON_BYTES
from course_server.realtime.closecodes import CloseCode

PING_AFTER = 0.5
PONG_WITHIN = 0.5
HEARTBEAT_TIMEOUT = 4408
REASON = "heartbeat timeout"

# --- 09.1 a heartbeat that expects an answer -------------------------------------------------

heartbeat = exercise(
    "09.1",
    "A heartbeat that expects an answer",
    target="watchdog",
    references=(
        "course_server.seed.heartbeat:heartbeat",
        "course_server.seed.heartbeat:websocket_with_heartbeat",
        "course_server.seed.heartbeat:robust_websocket",
    ),
)


async def serve_watchdog(h: Harness, endpoint: Any) -> str:
    h.websocket("/watch", endpoint)
    server = await h.serve()
    return server.ws("/watch")


@heartbeat.check(f"a quiet client is pinged after {PING_AFTER:g} s of silence")
async def _pinged(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        started = time.monotonic()
        frame = await receive(client, "a quiet client", wait=PING_AFTER + WAIT, harness=h)
        took = time.monotonic() - started
    expect(frame == "ping", f"a client that sent nothing got {frame!r} first, not 'ping'")
    expect(
        took >= PING_AFTER * 0.8,
        f"the ping came {took:.2f} s after connecting: wait for PING_AFTER s of silence first",
    )


@heartbeat.check("a client that answers every ping stays connected", timeout=8)
async def _answered(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        started = time.monotonic()
        frames: list[Any] = []
        try:
            while time.monotonic() - started < 3 * PING_AFTER:
                try:
                    async with asyncio.timeout(PING_AFTER + WAIT):
                        frames.append(await client.recv())
                except TimeoutError:
                    raise CheckFailed(f"after {frames}, no ping came") from None
                expect(frames[-1] == "ping", f"a client that only answered pings got {frames}")
                await client.send("pong")
            text = f"still here {random.Random().randrange(1000)}"
            await client.send(text)
            for _ in range(3):  # a ping may cross the message on the way; answer it
                reply = await receive(client, "the client", harness=h)
                if reply != "ping":
                    break
                await client.send("pong")
        except ConnectionClosed:
            took = time.monotonic() - started
            raise CheckFailed(
                f"a client that answered each ping with 'pong' at once was closed after "
                f"{took:.2f} s (code {client.close_code}), having got {frames}: a pong is a "
                "sign of life"
            ) from None
    expect(reply == text, f"after the pings, {text!r} got {reply!r}, not its echo")


@heartbeat.check(f"a client that does not answer is closed: {HEARTBEAT_TIMEOUT} {REASON!r}")
async def _silent(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    within = PING_AFTER + PONG_WITHIN + WAIT
    started = time.monotonic()
    try:
        seen = await attempt(url, timeout=within, open_timeout=WAIT, close_timeout=0.5)
    except TimeoutError:
        hint = f"a client that never answered was still connected {within:g} s later"
        raise CheckFailed(hint) from None
    took = time.monotonic() - started
    expect(seen.accepted, f"the handshake was refused with HTTP {seen.http_status}: accept first")
    expect(seen.received == ["ping"], f"a client that never answered: {seen}; ping it once")
    expect(
        seen.close_code == HEARTBEAT_TIMEOUT,
        f"a client that never answered was closed with {seen.close_code}, not "
        f"{HEARTBEAT_TIMEOUT} (HEARTBEAT_TIMEOUT)",
    )
    expect(
        seen.close_reason == REASON,
        f"a client that never answered was closed with the reason {seen.close_reason!r}, "
        f"not {REASON!r}",
    )
    expect(
        took >= (PING_AFTER + PONG_WITHIN) * 0.8,
        f"closed {took:.2f} s after connecting: give the client PONG_WITHIN s after the ping",
    )
    with contextlib.suppress(TimeoutError):  # the wait for an error that should never come
        await eventually(lambda: bool(h.errors), timeout=0.3)
        raise CheckFailed(  # the verdict adds what it raised
            f"after closing with {HEARTBEAT_TIMEOUT}, your code went on with the closed "
            "connection: return once it has closed"
        )


async def next_frame(client: Any, situation: str, wait: float) -> str:
    """The next frame the client gets; fail, saying what happened instead, if there is none."""
    try:
        async with asyncio.timeout(wait):
            frame: str = await client.recv()
            return frame
    except TimeoutError:
        raise CheckFailed(f"{situation}, nothing came within {wait:g} s") from None
    except ConnectionClosed:
        code, reason = client.close_code, client.close_reason
        raise CheckFailed(f"{situation}, the server closed ({code} {reason!r})") from None


@heartbeat.check("any message answers a ping, as a pong does: the client is there")
async def _message_answers(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        frame = await next_frame(client, "a quiet client waited for a ping", PING_AFTER + WAIT)
        expect(frame == "ping", f"a quiet client got {frame!r}, not 'ping'")
        text = f"I am here {random.Random().randrange(1000)}"
        await client.send(text)
        echo = await next_frame(client, f"a client answered the ping with {text!r}", WAIT)
        expect(echo == text, f"a client answered the ping with {text!r} and got {echo!r}")
        again = await next_frame(
            client,
            f"a client answered the ping with {text!r}, got it back and went quiet; then",
            PING_AFTER + WAIT,
        )
        expect(again == "ping", f"after answering a ping with a message, the client got {again!r}")


@heartbeat.check(
    "a client that answered once and then goes quiet for over a second is pinged again, then "
    "closed",
    timeout=8,
)
async def _quiet_again(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        frame = await next_frame(client, "a quiet client waited for a ping", PING_AFTER + WAIT)
        expect(frame == "ping", f"a quiet client got {frame!r}, not 'ping'")
        await client.send("pong")
        situation = "a client answered the first ping and went quiet; then"
        again = await next_frame(client, situation, PING_AFTER + WAIT)
        expect(again == "ping", f"{situation} it got {again!r}, not a second 'ping'")
        try:
            async with asyncio.timeout(PONG_WITHIN + WAIT):
                extra = await client.recv()
            raise CheckFailed(f"{situation} it got a second ping, kept quiet, and got {extra!r}")
        except ConnectionClosed:
            pass
        except TimeoutError:
            raise CheckFailed(
                f"{situation} it got a second ping and did not answer: it was still connected "
                f"{PONG_WITHIN + WAIT:g} s later"
            ) from None
    expect(
        (client.close_code, client.close_reason) == (HEARTBEAT_TIMEOUT, REASON),
        f"{situation} it did not answer the second ping and was closed with "
        f"{client.close_code} {client.close_reason!r}, not {HEARTBEAT_TIMEOUT} {REASON!r}",
    )


@heartbeat.check("a pong gets no answer; the next message is echoed")
async def _pong_unanswered(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    text = f"hello {random.Random().randrange(1000)}"
    async with dial(url) as client:
        await client.send("pong")
        await client.send(text)
        frame = await next_frame(client, f"a client sent 'pong' then {text!r}", WAIT)
    expect(frame == text, f"a client sent 'pong' then {text!r}, and got {frame!r} first")


@heartbeat.check("a client that keeps talking is never pinged, and hears each message back")
async def _talking(h: Harness, endpoint: Any) -> None:
    url = await serve_watchdog(h, endpoint)
    async with dial(url) as client:
        before = time.monotonic()  # when the client last sent something before this message
        for n in range(12):  # over 1.2 s, twice PING_AFTER, never quiet for more than 0.1 s
            sent = time.monotonic()
            await client.send(f"message {n}")
            reply = await receive(client, "a talking client", harness=h)
            if reply == "ping" and time.monotonic() - before >= PING_AFTER * 0.8:
                # A busy machine kept the client quiet that long: a ping is fair; read on.
                reply = await receive(client, "a talking client", harness=h)
            expect(
                reply == f"message {n}",
                f"a client that sent a message every 0.1 s sent 'message {n}' and got {reply!r}: "
                "any message is a sign of life",
            )
            before = sent
            await asyncio.sleep(0.1)  # the pace of the conversation: the time between messages


# --- 09.2 names that are safe to show --------------------------------------------------------

names = exercise(
    "09.2",
    "Names that are safe to show",
    target="name_problem",
    references=(
        "course_server.realtime.names:name_problem",
        "course_server.realtime.names:plain_name",
        "course_server.realtime.names:NAME_PATTERN",
    ),
)


def label(name: str) -> str:
    """A name as a hint shows it: escaped if it hides something, long ones cut."""
    shown = ascii(name) if any(map(plain_names.hidden, name)) else repr(name)
    return shown if len(name) <= 12 else f"{shown[:14]}… ({len(name)} characters)"


async def problems(h: Harness, name_problem: Any, candidates: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = await h.call(lambda: {name: name_problem(name) for name in candidates})
    return found


def random_name(rng: random.Random, script: str, size: int | None = None) -> str:
    """A name of ``size`` (else 3 to 12) letters of ``script``, maybe with a digit or ``_.-``."""
    letters = plain_names.ALPHABETS[script]
    size = size or rng.randint(3, 12)
    name = [rng.choice(letters) for _ in range(size)]
    if size > 3 and rng.random() < 0.5:
        name[rng.randrange(1, size)] = rng.choice(sorted(plain_names.NEUTRAL))
    return "".join(name)


def put_in(rng: random.Random, char: str, name: str) -> str:
    """``name`` with ``char`` at its start, its end or in between (a new place each run)."""
    at = rng.choice([0, len(name), rng.randint(1, len(name) - 1)])
    return name[:at] + char + name[at:]


async def expect_refused(h: Harness, name_problem: Any, candidates: dict[str, str]) -> None:
    """Each name (a key) must get a reason; its value says what is wrong with it."""
    got = await problems(h, name_problem, list(candidates))
    passed = [f"{label(name)} ({candidates[name]})" for name, why in got.items() if why is None]
    expect(not passed, f"these names passed: {', '.join(passed)}")


def greeter(name_problem: Any) -> Any:
    """Greets a good name by its NFKC form; closes a bad one with 1008 and the reason."""

    async def hello(websocket: WebSocket, name: str) -> None:
        await websocket.accept()
        problem = name_problem(name)
        if problem is None:
            await websocket.send_text(f"Hello, {unicodedata.normalize('NFKC', name)}")
            await websocket.close(1000)
        else:
            await websocket.close(1008, problem)

    return hello


FIXED_GOOD = ["Zoë", "山田さくら", "佐々木", "ルーシー", "a.b-c_1"]


@names.check("ordinary names in many scripts pass, up to 32 characters (a server greets them)")
async def _good(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    scripts = list(plain_names.ALPHABETS)
    good = [random_name(rng, script) for script in scripts] + FIXED_GOOD
    good += [random_name(rng, rng.choice(scripts), plain_names.MAX_NAME_CHARS) for _ in range(2)]
    h.websocket("/hello/{name}", greeter(name_problem))
    server = await h.serve()
    for name in good:
        seen = await attempt(server.ws(f"/hello/{quote(name)}"), timeout=WAIT, close_timeout=0.5)
        if seen.received == [f"Hello, {name}"]:
            continue
        size = f"{len(name)} characters, {len(name.encode())} bytes"
        if seen.close_code == 1008:
            raise CheckFailed(f"{name!r} ({size}) was refused: {seen.close_reason!r}")
        raise CheckFailed(f"{name!r} ({size}): {seen}")


@names.check("a name is judged by its NFKC form: ｂｏｂ, x², ﬁona and a decomposed ë pass")
async def _nfkc_forms(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    base = random_name(rng, "Latin").lower()
    forms = {
        "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in base): base,
        f"{base}²": f"{base}2",
        f"ﬁ{base}": f"fi{base}",
        f"{base}e\u0308": f"{base}ë",
    }
    got = await problems(h, name_problem, list(forms))
    refused = [f"{label(n)} (NFKC: {forms[n]!r}): {why!r}" for n, why in got.items() if why]
    expect(not refused, f"refused, though their NFKC forms are fine: {', '.join(refused)}")


@names.check("empty and too long are refused; the length is the NFKC form's")
async def _length(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    most = plain_names.MAX_NAME_CHARS
    grows = random_name(rng, "Latin", most - 1) + "ﬁ"
    await expect_refused(
        h,
        name_problem,
        {
            "": "empty",
            random_name(rng, "Latin", most + 1): f"{most + 1} characters",
            random_name(rng, "Cyrillic", rng.randint(most + 2, 200)): "too long",
            grows: f"{most} characters, but {most + 1} once NFKC makes ﬁ two",
            "ﷺ": "one character, 18 once NFKC spells it out, spaces included",
        },
    )


@names.check("spaces, markup, punctuation, numerals and combining marks are refused")
async def _not_letters(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    pools = [plain_names.SPACES, plain_names.SYMBOLS] * 2 + [plain_names.NUMERALS]
    # An en dash and a Unicode hyphen too: "-" is allowed, its look-alikes (Pd) are not.
    chars = [rng.choice(pool) for pool in [*pools, plain_names.MARKS]] + ["<", " ", "/"]
    chars += ["\u2013", "\u2010"]
    candidates = {put_in(rng, c, random_name(rng, "Latin")): describe(c) for c in chars}
    candidates["<script>"] = "markup"
    await expect_refused(h, name_problem, candidates)


def unsafe_check(pool: str, at_end: str = "") -> Any:
    """A check that ``pool``'s characters are refused wherever they are in a name.

    Those in ``at_end`` are also tried at the very end, where ``$`` lets a newline through.
    """

    async def run(h: Harness, name_problem: Any) -> None:
        rng = random.Random()
        scripts = list(plain_names.ALPHABETS)
        candidates = {
            put_in(rng, c, random_name(rng, rng.choice(scripts))): describe(c) for c in pool
        }
        for c in at_end:
            candidates[random_name(rng, rng.choice(scripts)) + c] = f"{describe(c)} at the end"
        await expect_refused(h, name_problem, candidates)

    return run


names.check("control characters (newline, tab, NUL…) are refused, even at the end")(
    unsafe_check(plain_names.CONTROL, at_end="\n")
)
names.check("format characters (zero-width, direction overrides, soft hyphen…) are refused")(
    unsafe_check(plain_names.FORMAT)
)
names.check("private-use characters and unassigned code points are refused")(
    unsafe_check(plain_names.PRIVATE_USE + plain_names.UNASSIGNED)
)


@names.check("filler characters, letters that show nothing (U+3164…), are refused")
async def _fillers(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    candidates = {c: describe(c) for c in plain_names.FILLERS}
    for c in plain_names.FILLERS:
        candidates[put_in(rng, c, random_name(rng, rng.choice(["Latin", "Hangul"])))] = describe(c)
    await expect_refused(h, name_problem, candidates)


def swap_one(rng: random.Random, name: str, lookalikes: dict[str, str]) -> str:
    """``name`` with one of its letters (at random) replaced by a lookalike from another script."""
    at = rng.choice([i for i, c in enumerate(name) if c in lookalikes])
    return name[:at] + lookalikes[name[at]] + name[at + 1 :]


CYRILLIC_LOOKALIKES = dict(zip("aceopxy", "асеорху", strict=True))
GREEK_LOOKALIKES = dict(zip("AEHIKMNOPTXYZo", "ΑΕΗΙΚΜΝΟΡΤΧΥΖο", strict=True))


@names.check("names that mix scripts (Latin with Cyrillic or Greek) are refused")
async def _mixed(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    latin = "".join(rng.choice("aceopxy") for _ in range(rng.randint(5, 9)))
    capital = rng.choice("AEHKMNOPTXYZ") + latin
    candidates = {
        swap_one(rng, latin, CYRILLIC_LOOKALIKES): "Latin with a Cyrillic lookalike",
        swap_one(rng, capital, GREEK_LOOKALIKES): "Latin with a Greek lookalike",
        random_name(rng, "Cyrillic", 4) + random_name(rng, "Greek", 4): "Cyrillic and Greek",
        put_in(rng, "০", latin): "Latin with a Bengali digit zero, which looks like o",
    }
    await expect_refused(h, name_problem, candidates)


_one_search_at_a_time = threading.Lock()
"""Hypothesis is not made for two searches at once in two threads (``tests/checks/test_checks.py``
checks eight answers at a time), nor is ``warnings.catch_warnings``: one search at a time."""


def search(strategy: Any, fault: Callable[[str], str | None], examples: int) -> Any:
    """The simplest name hypothesis finds where ``fault(name)`` has something to say, and what.

    Deterministic (``derandomize``): every run tries the same names, so a verdict is repeatable.
    """
    found: list[tuple[str, str]] = []

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.given(strategy)
    def probe(name: str) -> None:
        why = fault(name)
        if why is not None:
            found.append((name, why))
            raise CheckFailed(why)

    try:
        with _one_search_at_a_time, warnings.catch_warnings():
            # Hypothesis warns when the global random state changes while it draws a name:
            # here other threads (other checks' servers) did that, not the strategies.
            warnings.simplefilter("ignore", hypothesis.errors.HypothesisDeprecationWarning)
            probe()
    except CheckFailed:
        return found[-1]  # the last one hypothesis tried: the simplest it shrank to
    return None


async def probed(h: Harness, name_problem: Any) -> None:
    """Call ``name_problem`` once: a stub says so at once, before hypothesis tries hundreds."""
    await h.call(name_problem, "alice")


@names.check("every name the rule accepts is plain (hypothesis tries 400 tricky names)", timeout=10)
async def _accepted_are_plain(h: Harness, name_problem: Any) -> None:
    await probed(h, name_problem)

    def fault(name: str) -> str | None:
        return plain_names.unsafe(name) if name_problem(name) is None else None

    strategy = plain_names.tricky_names() | plain_names.any_text()
    found = await h.call(search, strategy, fault, 400)
    if found is not None:
        name, why = found
        raise CheckFailed(f"{label(name)} passed, but {why}")


@names.check("every ordinary name of one script passes (hypothesis tries 200)", timeout=10)
async def _ordinary_pass(h: Harness, name_problem: Any) -> None:
    await probed(h, name_problem)

    def fault(name: str) -> str | None:
        why = name_problem(name)
        return None if why is None else f"{why!r}"

    # The longest names first, whatever hypothesis draws: 32 characters of each script.
    longest = [(alphabet * 32)[:32] for alphabet in plain_names.ALPHABETS.values()]
    refused = [(name, fault(name)) for name in longest]
    found = next(((name, why) for name, why in refused if why is not None), None)
    if found is None:
        found = await h.call(search, plain_names.ordinary_names(), fault, 200)
    if found is not None:
        name, why = found
        scripts = sorted(
            {plain_names.script(c).lower() for c in name if c not in plain_names.NEUTRAL}
        )
        raise CheckFailed(f"{label(name)} ({', '.join(scripts)}) was refused: {why}")


@names.check("a reason is short plain text for the close frame, never the name itself")
async def _reasons(h: Harness, name_problem: Any) -> None:
    rng = random.Random()
    long_name = "".join(rng.choice("<>/ ") for _ in range(60)) + random_name(rng, "Greek", 80)
    candidates = ["", long_name, put_in(rng, "\n", random_name(rng, "Latin")), "\u202e" + "x" * 40]
    got = await problems(h, name_problem, candidates)
    for name, problem in got.items():
        shown = repr(problem) if len(repr(problem)) <= 50 else f"{repr(problem)[:48]}…"
        expect(
            isinstance(problem, str) and 0 < len(problem.encode()) <= MAX_REASON_BYTES,
            f"{label(name)} got the reason {shown}: the reason goes in the close frame, so it "
            f"must be text of 1 to {MAX_REASON_BYTES} bytes",
        )
        expect(
            problem.isprintable(),
            f"{label(name)} got the reason {shown}: not printable (a reason that quotes the "
            "name carries the name's invisible characters along)",
        )


# --- 09.3 an Origin allow-list ---------------------------------------------------------------

origins = exercise(
    "09.3",
    "An Origin allow-list",
    target="guarded_echo",
    references=(
        "course_server.security.origins:origin_allowed",
        "course_server.security.origins:allowed_here",
        "course_server.security.origins:server_origin",
        "course_server.security.origins:OriginGuard",
    ),
)

SITES = ("chat.example.com", "app.school.edu", "talk.example.org", "rooms.example.net")
BARE = ("example.com", "school.edu", "example.org")


class Origins:
    """One check's allow-list, drawn (``cases.seeded``): a site, a bare domain, a local page."""

    def __init__(self, check: str) -> None:
        rng = seeded(f"09.3 {check}")
        self.site = rng.choice(SITES)  # https://chat.example.com
        self.bare = rng.choice(BARE)  # https://example.com: what a suffix match lets through
        self.port = rng.randint(3000, 9999)  # http://localhost:PORT, a development page
        self.listed = [f"https://{self.site}", f"https://{self.bare}", self.local]

    @property
    def local(self) -> str:
        return f"http://localhost:{self.port}"


def echo_text(rng: random.Random) -> str:
    return f"hello {rng.randint(100, 999)}"


async def serve_guarded(h: Harness, endpoint: Any, listed: list[str]) -> str:
    h.app.state.allowed_origins = set(listed)
    h.websocket("/echo", endpoint)
    server = await h.serve()
    return server.ws("/echo")


async def let_in(h: Harness, url: str, origin: str | None, what: str) -> None:
    """``what`` (a handshake with this ``Origin``, None: none) is accepted, and echoed."""
    rng = seeded(f"09.3 {what}")
    try:
        async with dial(url, origin=origin) as client:
            for n in range(1, 4):  # more than one: the echo lasts as long as the connection
                text = echo_text(rng)
                try:
                    await client.send(text)
                except ConnectionClosed:
                    raise CheckFailed(
                        f"{what}: the connection closed ({client.close_code}) before its message "
                        f"{n} of 3: echo every message, for as long as the client stays"
                    ) from None
                echo = await receive(client, f"{what} (its message {n} of 3)", harness=h)
                expect(echo == text, f"{what} sent {text!r} (message {n}) and got {echo!r} back")
    except InvalidStatus as exc:
        raise CheckFailed(f"{what} was refused with HTTP {exc.response.status_code}") from None


async def refused(h: Harness, url: str, origin: str | None, what: str) -> None:
    """``what`` is refused in the handshake itself: HTTP 403, never a WebSocket.

    A refusal by an endpoint that raised is no refusal: the server answered 403 for it.
    """
    try:
        seen = await attempt(url, "hello", timeout=1, origin=origin, close_timeout=0.5)
    except TimeoutError:
        raise CheckFailed(f"{what} was let in: the connection was open a second later") from None
    if seen.accepted:
        raise CheckFailed(
            f"{what} was accepted, then closed ({seen.close_code} {seen.close_reason!r}): "
            "refuse before accept(), so that the client sees HTTP 403 and no WebSocket opens"
        )
    expect(seen.http_status == 403, f"{what} was refused with HTTP {seen.http_status}, not 403")
    expect(not h.errors, f"{what} was refused, but by your code raising: the server said 403")


@origins.check("a listed origin is let in, and its messages are echoed")
async def _listed(h: Harness, endpoint: Any) -> None:
    allowed = Origins("listed")
    url = await serve_guarded(h, endpoint, allowed.listed)
    for origin in allowed.listed:
        await let_in(h, url, origin, f"a page of {origin} (listed)")


@origins.check("no Origin header (a script or a server, not a browser) is let in")
async def _no_origin(h: Harness, endpoint: Any) -> None:
    url = await serve_guarded(h, endpoint, Origins("none").listed)
    await let_in(h, url, None, "a client that sent no Origin header")


@origins.check("an Origin not on the list is refused before accept, with HTTP 403")
async def _foreign(h: Harness, endpoint: Any) -> None:
    allowed = Origins("foreign")
    url = await serve_guarded(h, endpoint, allowed.listed)
    for origin in ("https://evil.example", f"https://attacker-{allowed.port}.example"):
        await refused(h, url, origin, f"a page of {origin} (not listed)")
    with contextlib.suppress(TimeoutError):  # the wait for an error that should never come
        await eventually(lambda: bool(h.errors), timeout=0.3)
        raise CheckFailed(  # the verdict adds what it raised
            "after refusing a handshake, your code went on with it: return once refused"
        )


@origins.check("look-alikes are refused: a listed origin with more before, after or inside it")
async def _lookalikes(h: Harness, endpoint: Any) -> None:
    allowed = Origins("lookalikes")
    url = await serve_guarded(h, endpoint, allowed.listed)
    site, bare = allowed.site, allowed.bare
    lookalikes = {
        f"https://{site}.evil.org": "a listed origin as its prefix",
        f"https://evil-{bare}": "a listed host as its suffix",
        f"https://evil.{bare}.attacker.io": "a listed host inside it",
        f"https://{site.replace('.', '-', 1)}": "a listed host with '-' for a '.'",
    }
    for origin, how in lookalikes.items():
        await refused(h, url, origin, f"a page of {origin} ({how})")


@origins.check("the scheme and the port are part of the origin: http is not https")
async def _scheme_and_port(h: Harness, endpoint: Any) -> None:
    allowed = Origins("scheme and port")
    url = await serve_guarded(h, endpoint, allowed.listed)
    others = {
        f"http://{allowed.site}": "http, where https is listed",
        f"wss://{allowed.site}": "wss, where https is listed",
        f"https://{allowed.site}:8443": "another port",
        f"http://localhost:{allowed.port + 1}": f"another port than {allowed.local}'s",
        f"https://localhost:{allowed.port}": f"https, where {allowed.local} is listed",
    }
    for origin, how in others.items():
        await refused(h, url, origin, f"a page of {origin} ({how})")


@origins.check("case does not matter: Chat.Example.COM on the list lets chat.example.com in")
async def _case(h: Harness, endpoint: Any) -> None:
    allowed = Origins("case")
    written = [
        f"https://{allowed.site.title()}",
        f"HTTPS://{allowed.bare.upper()}",
        f"http://LocalHost:{allowed.port}",
    ]
    url = await serve_guarded(h, endpoint, written)
    for entry, origin in zip(written, allowed.listed, strict=True):
        await let_in(h, url, origin, f"a page of {origin} ({entry} is listed)")
    shouted = f"HTTPS://{allowed.site.upper()}"
    await let_in(h, url, shouted, f"a client that sent Origin {shouted}")


@origins.check("Origin: null (a sandboxed iframe, a file:// page) is refused")
async def _null(h: Harness, endpoint: Any) -> None:
    url = await serve_guarded(h, endpoint, Origins("null").listed)
    await refused(h, url, "null", "a handshake with Origin: null")


# --- 09.4 a graceful shutdown ----------------------------------------------------------------

SHUTDOWN_TIMEOUT = 1.0
GOING_AWAY = CloseCode.GOING_AWAY

graceful = exercise(
    "09.4",
    "A graceful shutdown",
    target="shutdown",
    references=(
        "course_server.realtime.peers:Peers",
        "course_server.realtime.fanout:Peer",
        "course_server.runner:Goodbye",
    ),
)


@dataclasses.dataclass
class Connection:
    """The notebook's ``Connection``: an accepted WebSocket and the frames still queued for it."""

    websocket: WebSocket
    queued: deque[str] = dataclasses.field(default_factory=deque)


class Members:
    """The check's server: every connection it accepted, kept open until the client leaves."""

    def __init__(self, h: Harness) -> None:
        self.connections: list[Connection] = []
        self.left = 0  # connections whose client has gone
        self.h = h

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.connections.append(Connection(websocket))
        with contextlib.suppress(Exception):  # what the shutdown does to it is for it to say
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        self.left += 1

    async def serve(self) -> str:
        self.h.websocket("/member", self.endpoint)
        server = await self.h.serve()
        return server.ws("/member")

    async def joined(self, count: int) -> None:
        await eventually(lambda: len(self.connections) >= count, timeout=WAIT)


@dataclasses.dataclass
class Heard:
    """What one reading client got: its frames, then the close (None: still open)."""

    frames: list[str] = dataclasses.field(default_factory=list)
    code: int | None = None
    reason: str = ""


async def listen(client: ClientConnection, heard: Heard, busy: float = 0) -> None:
    """Read every frame into ``heard`` until the close; first be ``busy`` that many seconds."""
    await asyncio.sleep(busy)  # a client with other work: meanwhile its socket fills up
    with contextlib.suppress(ConnectionClosed):
        async for frame in client:
            heard.frames.append(str(frame))
    heard.code, heard.reason = client.close_code, client.close_reason or ""


def frames_for(check: str, n: int, count: int, padding: int = 0) -> list[str]:
    """``count`` frames for client ``n``, each with ``padding`` more characters."""
    rng = seeded(f"09.4 {check} {n}")
    return [f"client {n}, frame {i}: {rng.randint(0, 9999)}{'.' * padding}" for i in range(count)]


class Gathering:
    """Clients connected to ``Members``, the frames queued for each, and what each heard."""

    def __init__(self, members: Members, stack: contextlib.AsyncExitStack) -> None:
        self.members, self.stack = members, stack
        self.heard: list[Heard] = []
        self.listeners: list[asyncio.Task[None]] = []
        self.expected: list[list[str]] = []

    async def reader(self, url: str, frames: list[str], busy: float = 0) -> None:
        """A client that reads everything, with ``frames`` queued for it.

        A ``busy`` client reads only after that many seconds, through a receive buffer of 64 KB
        (no larger however long it waits), so a few MB back up into the server's buffers.
        """
        count = len(self.members.connections) + 1
        options: dict[str, Any] = {}
        if busy:
            sock = options["sock"] = socket.socket()
            self.stack.callback(sock.close)  # closed with the client, or if the dial fails
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)  # before connect()
            sock.setblocking(False)
            port = urlsplit(url).port
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        client = await self.stack.enter_async_context(dial(url, **options))
        await self.members.joined(count)
        # A deque is safe to fill from this thread, and nothing reads it before shutdown().
        self.members.connections[-1].queued.extend(frames)
        heard = Heard()
        self.heard.append(heard)
        self.expected.append(frames)
        self.listeners.append(asyncio.ensure_future(listen(client, heard, busy)))

    async def staller(self, url: str, frames: int = 200) -> None:
        """A client that stopped reading, with ``frames`` of 32 KB queued for it.

        That is more than the socket buffers between it and the server hold: a send to it
        waits for ever.
        """
        count = len(self.members.connections) + 1
        client = await stalled_reader(url, timeout=WAIT)
        self.stack.push_async_callback(client.__aexit__, None, None, None)
        await self.members.joined(count)
        self.members.connections[-1].queued.extend("x" * 32_768 for _ in range(frames))

    async def heard_all(self, wait: float = 1.0) -> None:
        """Wait (at most ``wait`` s) for every reading client's connection to close.

        A client still connected then stops listening: its own close on the way out (1000)
        is not the server's goodbye.
        """
        if self.listeners:
            _, open_ = await asyncio.wait(self.listeners, timeout=wait)
            for listener in open_:
                listener.cancel()


async def shut_down(h: Harness, shutdown: Any, connections: list[Connection]) -> float:
    """Run the learner's ``shutdown`` on the server's loop; the seconds it took there.

    It is given ``SHUTDOWN_TIMEOUT`` plus ``WAIT`` seconds: a shutdown that has not returned by
    then has no bound of its own, and the check says so instead of waiting on.
    """
    assert h.server is not None
    server, limit = h.server, SHUTDOWN_TIMEOUT + WAIT

    async def job() -> tuple[BaseException | None, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await shutdown(list(connections))
        except Exception as exc:
            return exc, loop.time() - started
        return None, loop.time() - started

    try:
        # The coroutine is made in the worker thread: never left unawaited if this is cancelled.
        raised, took = await asyncio.to_thread(lambda: server.call(job(), limit))
    except TimeoutError:
        raise CheckFailed(
            f"shutdown() was still running {limit:g} s later: bound it, so that a client that "
            f"stopped reading cannot hold the server (SHUTDOWN_TIMEOUT is {SHUTDOWN_TIMEOUT:g} s)"
        ) from None
    if raised is not None:
        h.errors.append(raised)
        if isinstance(raised, TimeoutError):
            raise CheckFailed(
                "shutdown() raised TimeoutError when its time was up: catch it and return, so "
                "that the rest of the server's shutdown still runs"
            )
        raise CheckFailed("shutdown() raised instead of returning")
    return float(took)


def judged(heard: Heard, expected: list[str], who: str) -> None:
    """``who`` got every frame queued for it, in order (what it got after them is not judged)."""
    got = heard.frames
    if got == expected:
        return
    if sorted(got) == sorted(expected):
        order = [expected.index(frame) for frame in got]
        raise CheckFailed(f"{who} got its {len(expected)} queued frames in the order {order}")
    ended = "was still open" if heard.code is None else f"closed ({heard.code})"
    raise CheckFailed(
        f"{who} got {len(got)} of the {len(expected)} frames queued for it, and the connection "
        f"{ended}: send what is queued, then close"
    )


def said_goodbye(heard: Heard, who: str) -> None:
    if heard.code is None:
        raise CheckFailed(f"{who} was still connected after shutdown() returned: close it")
    expect(
        heard.code == GOING_AWAY,
        f"{who} was closed with {heard.code}, not {GOING_AWAY} (going away: the server is "
        "shutting down, come back later)",
    )
    expect(heard.reason, f"{who} was closed with {GOING_AWAY} and no reason: say why")


@graceful.check("the frames queued for a client all reach it, in order, before the close")
async def _flushed(h: Harness, shutdown: Any) -> None:
    members = Members(h)
    url = await members.serve()
    async with contextlib.AsyncExitStack() as stack:
        gathering = Gathering(members, stack)
        await gathering.reader(url, frames_for("flushed", 0, 8))
        await shut_down(h, shutdown, members.connections)
        await gathering.heard_all()
    judged(gathering.heard[0], gathering.expected[0], "the client")


@graceful.check(f"then the client is closed with {GOING_AWAY} (going away) and a reason")
async def _going_away(h: Harness, shutdown: Any) -> None:
    members = Members(h)
    url = await members.serve()
    async with contextlib.AsyncExitStack() as stack:
        gathering = Gathering(members, stack)
        await gathering.reader(url, frames_for("going away", 0, 2))
        await shut_down(h, shutdown, members.connections)
        await gathering.heard_all()
    said_goodbye(gathering.heard[0], "the client")


@graceful.check(f"every connection gets its frames and {GOING_AWAY}, not only the first")
async def _every(h: Harness, shutdown: Any) -> None:
    members = Members(h)
    url = await members.serve()
    async with contextlib.AsyncExitStack() as stack:
        gathering = Gathering(members, stack)
        for n, count in enumerate((3, 0, 5, 1)):
            await gathering.reader(url, frames_for("every", n, count))
        await shut_down(h, shutdown, members.connections)
        await gathering.heard_all()
    for n, (heard, expected) in enumerate(zip(gathering.heard, gathering.expected, strict=True)):
        who = f"client {n + 1} of {len(gathering.heard)}"
        judged(heard, expected, who)
        said_goodbye(heard, who)


@graceful.check(
    f"a client that stopped reading holds shutdown() {SHUTDOWN_TIMEOUT:g} s at most", timeout=8
)
async def _bounded(h: Harness, shutdown: Any) -> None:
    members = Members(h)
    url = await members.serve()
    async with contextlib.AsyncExitStack() as stack:
        gathering = Gathering(members, stack)
        await gathering.staller(url)
        await gathering.reader(url, frames_for("bounded", 1, 3))
        took = await shut_down(h, shutdown, members.connections)
    expect(
        took <= SHUTDOWN_TIMEOUT + 1,  # late, on a busy machine, by a generous margin
        f"with a client that stopped reading, shutdown() took {took:.2f} s: give up after "
        f"SHUTDOWN_TIMEOUT ({SHUTDOWN_TIMEOUT:g} s)",
    )


@graceful.check("a client that stopped reading holds no one else back", timeout=8)
async def _no_one_else(h: Harness, shutdown: Any) -> None:
    members = Members(h)
    url = await members.serve()
    async with contextlib.AsyncExitStack() as stack:
        gathering = Gathering(members, stack)
        await gathering.staller(url)  # first in the list: a shutdown one at a time waits on it
        for n in (1, 2):
            await gathering.reader(url, frames_for("no one else", n, 4))
        with contextlib.suppress(CheckFailed):  # too slow is the check before's verdict
            await shut_down(h, shutdown, members.connections)
        await gathering.heard_all()
    for n, (heard, expected) in enumerate(zip(gathering.heard, gathering.expected, strict=True)):
        who = f"a reading client (number {n + 2} of 3), behind one that stopped reading,"
        judged(heard, expected, who)
        said_goodbye(heard, who)


@graceful.check("a client that has already left is no trouble: the others get their goodbye")
async def _left(h: Harness, shutdown: Any) -> None:
    members = Members(h)
    url = await members.serve()
    async with contextlib.AsyncExitStack() as stack:
        gathering = Gathering(members, stack)
        # First in the list: a TaskGroup cancels those after it before they have begun.
        gone = await stalled_reader(url, timeout=WAIT)
        await members.joined(1)
        members.connections[0].queued.extend(frames_for("left", 0, 3))
        gone.vanish()  # a crashed tab: reset, no close frame
        await eventually(lambda: members.left == 1, timeout=WAIT)  # the server has seen it
        await gathering.reader(url, frames_for("left", 1, 3))
        # 8 MB for a client busy for a moment: more than the sockets between take, so its
        # goodbye is still sending (a TaskGroup would cancel it) when the first client's fails.
        await gathering.reader(url, frames_for("left", 2, 256, padding=32_768), busy=0.3)
        await gathering.reader(url, frames_for("left", 3, 3))
        await shut_down(h, shutdown, members.connections)
        await gathering.heard_all()
    for n, (heard, expected) in enumerate(zip(gathering.heard, gathering.expected, strict=True)):
        who = f"client {n + 2} of 4 (the first had left)"
        judged(heard, expected, who)
        said_goodbye(heard, who)
