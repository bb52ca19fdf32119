"""Checks for lesson 04's exercises: resume by ``last_id``, and a token bucket.

``catch_up`` is plugged into a small chat endpoint (history in a ``deque(maxlen=5)``, ids
counted from a drawn first id, as in a room that restarted) and driven by real clients; then it
is called directly on every ``last_id`` around histories that start anywhere, full or not. The
token bucket runs on a fake clock that the check moves, so "one second later" takes no second
and never depends on the machine's speed; its answers are compared with the prompt's rule on
fixed scripts, on floods (where refusals are many), and on 300 random scripts.

The chat page's JavaScript (04.3) runs in headless Chromium, on a page of the check's own
(``checks.browser``) next to a chat room of the check's own: a fresh connection gets the newest
few messages, ``?last_id=N`` gets every message after N and then the newest of them once more,
as a message sent during a reconnect can arrive both ways. The checks read what the page shows,
what it handed to the HTML parser, and which handshakes it made (when, and with which
``last_id``) while the room drops it or refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import random
from collections import deque
from typing import Any

from fastapi import WebSocket
from websockets.asyncio.client import ClientConnection

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.browser import Page, opened, serve_page
from course_server.checks.cases import agree, answers, seeded
from course_server.checks.harness import Harness
from course_server.checks.talk import dial, receive
from course_server.lab.waiting import eventually

# --- 04.1 resume by last_id ------------------------------------------------------------------

resume = exercise(
    "04.1",
    "Resume after a reconnect, by last_id",
    target="catch_up",
    references=("course_server.realtime.roomlog:MemoryLog",),
)

HISTORY = 5
MARKER = "-- live --"


class Chat:
    """The check's chat endpoint around the learner's ``catch_up``; its state, for the check.

    Its ids start at ``first_id``, drawn by each check: the room restarted, and kept counting.
    """

    def __init__(self, h: Harness, catch_up: Any, first_id: int) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.members: list[WebSocket] = []
        ids = itertools.count(first_id)

        async def chat(websocket: WebSocket, last_id: int | None = None) -> None:
            await websocket.accept()
            if last_id is None:
                backlog = list(self.history)
            else:
                complete, backlog = catch_up(self.history, last_id)
                resumed = {"type": "resume", "complete": complete, "after": last_id}
                await websocket.send_json(resumed)
            for event in backlog:
                await websocket.send_json(event)
            self.members.append(websocket)
            try:
                while True:
                    event = {"id": next(ids), "content": await websocket.receive_text()}
                    self.history.append(event)
                    for member in list(self.members):
                        await member.send_json(event)
            finally:
                self.members.remove(websocket)

        h.websocket("/chat", chat)


async def post(client: ClientConnection, count: int) -> None:
    """Send ``count`` messages and wait for each to come back (so each has its id)."""
    for n in range(count):
        await client.send(f"message {n + 1}")
        await receive(client, "the poster")


async def reconnect(h: Harness, chat: Chat, poster: ClientConnection, last_id: int) -> Any:
    """Connect with ``?last_id=``; return the resume frame and the ids replayed before live."""
    assert h.server is not None
    async with dial(h.server.ws(f"/chat?last_id={last_id}")) as client:
        first = await receive(client, f"a client resuming after {last_id}")
        try:
            await eventually(lambda: len(chat.members) == 2, timeout=2)
        except TimeoutError:
            raise CheckFailed(f"a client resuming after {last_id} never joined") from None
        await poster.send(MARKER)
        replayed = []
        while (frame := await receive(client, "the resuming client")) and MARKER not in frame:
            replayed.append(frame)
    return json.loads(first), [json.loads(frame).get("id") for frame in replayed]


async def scenario(
    h: Harness, catch_up: Any, check: str, posted: int, seen: int
) -> tuple[dict[str, Any], list[int], int]:
    """Post ``posted`` messages, then resume after the ``seen``-th; the first id is drawn.

    Returns the resume frame, the ids replayed, and the first id (for the expected ids).
    """
    first_id = seeded(f"04.1 {check}").randint(2, 900)
    chat = Chat(h, catch_up, first_id)
    server = await h.serve()
    async with dial(server.ws("/chat")) as poster:
        await post(poster, posted)
        first, ids = await reconnect(h, chat, poster, first_id + seen - 1)
    expect(first.get("type") == "resume", f"catch_up raised, or returned {first}")
    return first, ids, first_id


def said(first: dict[str, Any], ids: list[int], complete: bool, expected: list[int]) -> str:
    return (
        f"after {first.get('after')}, catch_up returned complete={first.get('complete')} and "
        f"messages {ids}; expected complete={complete} and {expected}"
    )


async def resumes(
    h: Harness, catch_up: Any, check: str, posted: int, seen: int, complete: bool
) -> None:
    """After ``posted`` messages, a client that saw ``seen`` of them gets the rest still held."""
    first, ids, start = await scenario(h, catch_up, check, posted, seen)
    newest = start + posted - 1
    expected = list(range(max(start + seen, newest - HISTORY + 1), newest + 1))
    ok = first["complete"] is complete and ids == expected
    expect(ok, said(first, ids, complete, expected))


@resume.check("sends exactly the messages after last_id")
async def _after(h: Harness, catch_up: Any) -> None:
    await resumes(h, catch_up, "after", posted=4, seen=2, complete=True)


@resume.check("a client that is up to date gets nothing old")
async def _up_to_date(h: Harness, catch_up: Any) -> None:
    await resumes(h, catch_up, "up to date", posted=4, seen=4, complete=True)


@resume.check("counts by id, not by position, once old messages are dropped")
async def _by_id(h: Harness, catch_up: Any) -> None:
    await resumes(h, catch_up, "by id", posted=8, seen=5, complete=True)  # 4th to 8th held


@resume.check("says when messages were lost, and sends what is left")
async def _lost(h: Harness, catch_up: Any) -> None:
    await resumes(h, catch_up, "lost", posted=8, seen=1, complete=False)  # 2nd and 3rd gone


@resume.check("nothing is lost when the first message held is the next one")
async def _boundary(h: Harness, catch_up: Any) -> None:
    await resumes(h, catch_up, "boundary", posted=8, seen=3, complete=True)  # 4th is the oldest


def history_of(first_id: int, posted: int) -> deque[dict[str, Any]]:
    """The history after ``posted`` messages numbered from ``first_id``."""
    history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
    history.extend({"id": n, "content": f"message {n}"} for n in range(first_id, first_id + posted))
    return history


def resumed(history: deque[dict[str, Any]], last_id: int) -> tuple[bool, list[int]]:
    """What a resume after ``last_id`` must give: complete, and the ids to send."""
    complete = not history or last_id >= history[0]["id"] - 1
    return complete, [m["id"] for m in history if m["id"] > last_id]


def case(x: tuple[int, int, int]) -> str:
    first_id, posted, last_id = x
    ids = [m["id"] for m in history_of(first_id, posted)]
    return f"a history holding ids {ids} and last_id={last_id}"


def calls(catch_up: Any) -> Any:
    """``catch_up`` on one case, its answer made comparable: (complete, the ids it returned)."""

    def call(x: tuple[int, int, int]) -> tuple[Any, list[Any]]:
        first_id, posted, last_id = x
        complete, messages = catch_up(history_of(first_id, posted), last_id)
        return complete, [m["id"] if isinstance(m, dict) else m for m in messages]

    return call


@resume.check("an empty history has lost nothing and has nothing to send")
async def _empty(h: Harness, catch_up: Any) -> None:
    cases = [(1, 0, 0), (1, 0, seeded("04.1 empty").randint(2, 900))]
    await agree(h, calls(catch_up), cases, lambda x: (True, []), shown=case)


@resume.check("leaves the history as it was: other clients read it too")
async def _unchanged(h: Harness, catch_up: Any) -> None:
    rng = seeded("04.1 unchanged")
    first_id = rng.randint(2, 900)
    cases = [(first_id, posted, first_id + seen) for posted, seen in ((3, 0), (5, 2), (8, 6))]

    def changed(x: tuple[int, int, int]) -> list[int | None] | None:
        """None if ``catch_up`` left the history as it was; else the ids it holds now."""
        history = history_of(*x[:2])
        catch_up(history, x[2])
        return None if history == history_of(*x[:2]) else [m.get("id") for m in history]

    for x, after in zip(cases, await answers(h, changed, cases, shown=case), strict=True):
        expect(after is None, f"for {case(x)}, catch_up changed the history to ids {after}")


@resume.check("right for every last_id, whatever id the history starts at, full or not")
async def _every(h: Harness, catch_up: Any) -> None:
    rng = seeded("04.1 every")
    cases = [
        (first_id, posted, last_id)
        for first_id in (1, rng.randint(2, 40), rng.randint(100, 900))
        for posted in (1, 2, 4, 5, 6, 9)
        for last_id in range(max(0, first_id - 3), first_id + posted + 1)
    ]
    await agree(h, calls(catch_up), cases, lambda x: resumed(history_of(*x[:2]), x[2]), shown=case)


# --- 04.2 a token bucket ---------------------------------------------------------------------

bucket = exercise(
    "04.2",
    "A token bucket",
    target="TokenBucket",
    references=(
        "course_server.realtime.ratelimit:TokenBucket",
        "course_server.realtime.ratelimit:UserBuckets",
    ),
)


class FakeClock:
    """A clock that moves only when told to: ``clock()`` reads it, ``advance(s)`` moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Script = tuple[float, int, tuple[float | int, ...]]
"""A bucket's rate and burst, and steps: a float advances the clock, an int is that many calls."""


def run_script(bucket_class: Any, script: Script) -> str:
    """Run a script on a new bucket on a fake clock; its answers, ``Y`` or ``n`` per call."""
    rate, burst, steps = script
    clock = FakeClock()
    tokens = bucket_class(rate=rate, burst=burst, clock=clock)
    said: list[object] = []
    for step in steps:
        if isinstance(step, float):
            clock.advance(step)
        else:
            said.extend(tokens.allow() for _ in range(step))
    return "".join(map(written, said))


def written(answer: object) -> str:
    """``Y`` for True, ``n`` for False; anything else, even falsy, shown as it is: ``[None]``."""
    return "Y" if answer is True else "n" if answer is False else f"[{answer!r}]"


def bucket_model(script: Script) -> str:
    """What a token bucket answers to the script: the rule of the prompt, step by step."""
    rate, burst, steps = script
    tokens, said = float(burst), ""
    for step in steps:
        if isinstance(step, float):
            tokens = min(burst, tokens + step * rate)
            continue
        for _ in range(step):
            said += "Y" if tokens >= 1 else "n"
            tokens -= tokens >= 1
    return said


def told(script: Script) -> str:
    rate, burst, steps = script
    said = ", ".join(
        f"{s:g} s" if isinstance(s, float) else f"{s} call{'s' if s > 1 else ''}" for s in steps
    )
    return f"a bucket with rate={rate:g}, burst={burst:g}, then {said}"


def scripts(bucket_class: Any) -> Any:
    return functools.partial(run_script, bucket_class)


@bucket.check("a full bucket lets a burst through, then refuses")
async def _burst(h: Harness, bucket_class: Any) -> None:
    rng = seeded("04.2 burst")
    cases: list[Script] = [(2, 5, (7,)), (rng.choice((1, 4)), rng.randint(2, 9), (12,))]
    await agree(h, scripts(bucket_class), cases, bucket_model, shown=told)


@bucket.check("refills at rate tokens per second, fractions included")
async def _refill(h: Harness, bucket_class: Any) -> None:
    rng = seeded("04.2 refill")
    cases: list[Script] = [
        (2, 5, (5, 1.0, 3, 0.25, 1, 0.25, 1)),
        (rng.choice((0.5, 4)), rng.randint(3, 6), (6, 0.125, 1, 0.375, 1, 0.5, 2, 1.0, 3)),
    ]
    await agree(h, scripts(bucket_class), cases, bucket_model, shown=told)


@bucket.check("never holds more than burst tokens")
async def _cap(h: Harness, bucket_class: Any) -> None:
    burst = seeded("04.2 cap").randint(2, 8)
    cases: list[Script] = [(2, 5, (5, 100.0, 7)), (1, burst, (1, 3.0, burst + 2))]
    await agree(h, scripts(bucket_class), cases, bucket_model, shown=told)


@bucket.check("a refused call neither loses nor counts twice the tokens flowing in")
async def _flood(h: Harness, bucket_class: Any) -> None:
    """A flood: refusals between the allowed calls must not change how many get through."""
    floods = [(2, 5, 0.125), (1, 3, 0.25), (4, 2, 0.0625)]
    for rate, burst, every in floods:
        script: Script = (rate, burst, (burst, *[every, 1] * int(10 / every)))
        got = await h.call(run_script, bucket_class, script)
        expected = bucket_model(script)
        if got == expected:
            continue
        wrong = next(n for n, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b)
        answer = {"Y": "allowed", "n": "refused"}.get(got[wrong : wrong + 1], "not answered")
        raise CheckFailed(
            f"after the burst, a flood of one call every {every:g} s for 10 s (rate={rate:g}, "
            f"burst={burst}): you let {got[burst:].count('Y')} through, a token bucket lets "
            f"{expected[burst:].count('Y')} (rate × 10 s); the first wrong answer: call "
            f"{wrong + 1}, {answer}"
        )


def random_script(rng: random.Random) -> Script:
    """Calls and pauses of whole eighths of a second, exact in floating point."""
    steps = [
        rng.randint(1, 4) if rng.random() < 0.5 else rng.randint(1, 24) / 8
        for _ in range(rng.randint(2, 8))
    ]
    return rng.choice((0.5, 1, 2, 4)), rng.randint(1, 6), tuple(steps)


@bucket.check("answers 300 random scripts of calls and pauses as a token bucket does")
async def _random(h: Harness, bucket_class: Any) -> None:
    rng = seeded("04.2 random")
    cases = [random_script(rng) for _ in range(300)]
    await agree(h, scripts(bucket_class), cases, bucket_model, shown=told)


@bucket.check("limits a flood on a real WebSocket")
async def _websocket(h: Harness, bucket_class: Any) -> None:
    clock = FakeClock()

    async def limited(websocket: WebSocket) -> None:
        await websocket.accept()
        tokens = bucket_class(rate=1, burst=3, clock=clock)
        while True:
            await websocket.receive_text()
            await websocket.send_text("ok" if tokens.allow() else "rate_limited")

    h.websocket("/limited", limited)
    server = await h.serve()
    async with dial(server.ws("/limited")) as client:

        async def ask(message: str) -> str:
            await client.send(message)
            answer: str = await receive(client, "the client")
            return answer

        flood = [await ask(message) for message in "abcde"]
        clock.advance(2.0)
        later = [await ask(message) for message in "fgh"]
    expected = ["ok"] * 3 + ["rate_limited"] * 2
    expect(flood == expected, f"5 messages at once (rate 1, burst 3) got {flood}")
    expected = ["ok", "ok", "rate_limited"]
    expect(later == expected, f"2 s later, 3 more messages got {later}")


# --- 04.3 the chat page's JavaScript, in Chromium --------------------------------------------

chat_page = exercise(
    "04.3", "The chat page's JavaScript: safe rendering, resume", target="chat_script"
)

TAIL = 3
"""Messages a connection without ``?last_id=`` gets: the room's newest few."""
REFUSING = 2.0
"""Seconds the server refuses every handshake, in the check that counts the page's attempts."""
PAUSE = 0.25
"""The shortest wait the prompt allows between two connection attempts, in seconds."""

DRIVER = """
"use strict";
window.state = { lastId: null };
const url = new URL("chat", location.href);
url.protocol = "ws:";
connect(url.href, document.getElementById("messages"), window.state);
"""

MARKUP = (
    ("mallory", '<img src=x onerror="window.xss += 1">'),
    ("<i>eve</i>", "<b>bold</b> & <script>window.xss += 1</script>"),
    ("trudy", "a < b && c > d, \"quoted\" 'too'"),
)


class Room:
    """The check's chat room at ``/chat``, as the prompt describes it; what the page asked for.

    Its state lives on the server's event loop: the check changes it through ``h.on_server``.
    Every connection has a queue its endpoint writes from, so frames leave in the order posted.
    """

    def __init__(self, h: Harness, first_id: int) -> None:
        self.ids = itertools.count(first_id)
        self.history: list[dict[str, Any]] = []
        self.members: list[asyncio.Queue[dict[str, Any] | None]] = []
        self.attempts: list[str | None] = []  # ?last_id= of every handshake
        self.accepted: list[int | None] = []  # and of every one let in
        self.invalid: list[str] = []  # the ones refused: not an id
        self.refusing = False
        h.websocket("/chat", self.chat)

    async def chat(self, websocket: WebSocket, last_id: str | None = None) -> None:
        self.attempts.append(last_id)
        if self.refusing:
            await websocket.close(1013)  # before accept: the handshake is refused (HTTP 403)
            return
        if last_id is not None and not last_id.isdigit():  # "null", "undefined", "NaN"
            self.invalid.append(last_id)
            await websocket.close(1008)
            return
        await websocket.accept()
        after = None if last_id is None else int(last_id)
        self.accepted.append(after)
        outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        if after is None:
            backlog = self.history[-TAIL:]
        else:  # what came after last_id, and the newest once more, as if it came live too
            backlog = [m for m in self.history if m["id"] > after]
            backlog += backlog[-1:]
        for old in backlog:
            outbox.put_nowait(old)
        self.members.append(outbox)
        try:
            while (frame := await outbox.get()) is not None:
                await websocket.send_json(frame)
            await websocket.close(1012, "the server restarts")
        except Exception:  # the page went away: the check's own endpoint, not the learner's code
            return
        finally:
            if outbox in self.members:
                self.members.remove(outbox)

    def post(self, *messages: tuple[str, str], live: bool = True) -> list[dict[str, Any]]:
        """Add messages (username, content) to the room; send them to its members if ``live``."""
        frames = []
        for username, content in messages:
            frame = {"type": "message", "id": next(self.ids), "username": username}
            frame |= {"content": content, "timestamp": "2026-01-01T00:00:00+00:00"}
            self.history.append(frame)
            frames.append(frame)
            for outbox in self.members if live else ():
                outbox.put_nowait(frame)
        return frames

    def why(self) -> str:
        """What went wrong with the page's handshakes, for a hint: "" if nothing."""
        if not self.invalid:
            return ""
        return (
            f" (the page asked for ?last_id={self.invalid[0]}, and was refused: send an id, "
            "and no last_id before the first message)"
        )

    def drop(self, *messages: tuple[str, str]) -> list[dict[str, Any]]:
        """Post ``messages`` that no one receives, then close every connection (1012)."""
        frames = self.post(*messages, live=False)
        for outbox in self.members:
            outbox.put_nowait(None)
        self.members.clear()
        return frames


def line(frame: dict[str, Any]) -> str:
    return f"{frame['username']}: {frame['content']}"


async def open_page(h: Harness, chat_script: Any, check: str) -> Room:
    """The learner's script and the room, served; the room's first id drawn for ``check``."""
    source = await h.call(chat_script)
    expect(isinstance(source, str), f"chat_script() returned {type(source).__name__}, not str")
    room = Room(h, seeded(f"04.3 {check}").randint(2, 900))
    serve_page(h, source, DRIVER)
    await h.serve()
    return room


async def shows(page: Page, frames: list[dict[str, Any]], timeout: float = 5) -> list[str]:
    """The page's lines once the last of ``frames`` shows (or ``timeout`` passed)."""
    await page.until(
        "text => [...document.getElementById('messages').children]"
        ".some((e) => e.textContent === text)",
        line(frames[-1]),
        timeout,
    )
    lines: list[str] = await page.lines()
    return lines


async def showing(room: Room, page: Page, frames: list[dict[str, Any]]) -> None:
    """Fail unless the page comes to show exactly ``frames``, in order."""
    shown = await shows(page, frames)
    expected = [line(f) for f in frames]
    hint = f"the page shows {shown}, expected {expected}{room.why()}{await page.raised()}"
    expect(shown == expected, hint)


def names(lines: list[str], frames: list[dict[str, Any]]) -> str:
    """Lines as the ids of the frames they show (``?`` for anything else), for a hint."""
    ids = {line(f): f["id"] for f in frames}
    return "[" + ", ".join(str(ids.get(text, "?")) for text in lines) + "]"


def loss(lines: list[str], frames: list[dict[str, Any]]) -> str:
    """What is lost, doubled or out of order between ``lines`` and ``frames``; "" if nothing."""
    expected = [line(f) for f in frames]
    lost = [f["id"] for f in frames if line(f) not in lines]
    doubled = sorted({f["id"] for f in frames if lines.count(line(f)) > 1})
    said = []
    if lost:
        said.append(f"lost ids {lost}")
    if doubled:
        said.append(f"showed ids {doubled} more than once")
    if not said and lines != expected:
        said.append("showed them out of order")
    if not said:
        return ""
    return (
        f"{' and '.join(said)}: the page shows ids {names(lines, frames)}, "
        f"expected {[f['id'] for f in frames]}"
    )


@chat_page.check("shows each message as 'user: text', one list item each, in order", timeout=20)
async def _in_order(h: Harness, chat_script: Any) -> None:
    room = await open_page(h, chat_script, "in order")
    said = (("alice", "hello"), ("bob", "hi alice"), ("alice", "how are you?"))
    history = await h.on_server(room.post, *said)
    async with opened(h) as page:
        shown = await shows(page, history)
        expect(
            shown == [line(f) for f in history],
            f"the history {said} showed as {shown}{room.why()}{await page.raised()}",
        )
        live = await h.on_server(room.post, ("carol", "late"), ("bob", "later"))
        shown = await shows(page, history + live)
        expected = [line(f) for f in history + live]
        hint = f"after two live messages, the page shows {shown}, expected {expected}"
        expect(shown == expected, hint + await page.raised())


@chat_page.check(
    "markup in a message shows as text: no element is made, no handler runs", timeout=20
)
async def _as_text(h: Harness, chat_script: Any) -> None:
    room = await open_page(h, chat_script, "as text")
    frames = await h.on_server(room.post, *MARKUP)
    async with opened(h) as page:
        shown = await shows(page, frames)
        made = await page.run(
            "() => [...document.querySelectorAll('#messages *')]"
            ".filter((e) => e.parentElement.id !== 'messages')"
            ".map((e) => e.tagName.toLowerCase())"
        )
        expect(
            not made,
            f"a message's text made elements {sorted(set(made))} on the page: "
            "text went through the HTML parser (use textContent)",
        )
        expect(
            shown == [line(f) for f in frames],
            f"messages with markup in them showed as "
            f"{shown}, not as the text sent{room.why()}{await page.raised()}",
        )
        expect(await page.run("() => window.xss") == 0, "a handler in a message ran")


@chat_page.check(
    "never hands text to the HTML parser (innerHTML, insertAdjacentHTML, …)", timeout=20
)
async def _no_parser(h: Harness, chat_script: Any) -> None:
    room = await open_page(h, chat_script, "no parser")
    frames = await h.on_server(room.post, ("alice", "plain words"), ("bob", "x < y & z"))
    async with opened(h) as page:
        await showing(room, page, frames)
        used = await page.sinks()
        expect(
            not used,
            f"your code used {', '.join(sorted(set(used)))}: escaping by hand is "
            "how XSS slips back in; build elements and set textContent",
        )


@chat_page.check(
    "after a drop, resumes with last_id: every message shown once, none lost", timeout=20
)
async def _resumes(h: Harness, chat_script: Any) -> None:
    room = await open_page(h, chat_script, "resumes")
    before = await h.on_server(room.post, ("alice", "one"), ("bob", "two"), ("alice", "three"))
    async with opened(h) as page:
        await showing(room, page, before)
        before += await h.on_server(room.post, ("bob", "four"), ("carol", "five"))
        await showing(room, page, before)
        missed = await h.on_server(room.drop, *[("alice", f"missed {n}") for n in range(1, 6)])
        await back(room, page, "the server closed the connection (1012)")
        frames = before + missed + await h.on_server(room.post, ("bob", "welcome back"))
        await resumed_once(room, page, frames, seen=before[-1]["id"])


@chat_page.check("waits between attempts while the server refuses, and keeps trying", timeout=20)
async def _paced(h: Harness, chat_script: Any) -> None:
    room = await open_page(h, chat_script, "paced")
    before = await h.on_server(room.post, ("alice", "one"), ("bob", "two"))
    async with opened(h) as page:
        await showing(room, page, before)

        def refuse() -> list[dict[str, Any]]:
            room.refusing = True
            return room.drop(("carol", "while refused"))

        missed = await h.on_server(refuse)
        # The window is the measurement itself (attempts per second), not a wait for readiness.
        await asyncio.sleep(REFUSING)
        tries = len(room.attempts) - 1
        most = int(REFUSING / PAUSE) + 2
        await h.on_server(setattr, room, "refusing", False)
        expect(
            tries <= most,
            f"while the server refused every handshake for {REFUSING:g} s, "
            f"the page tried {tries} times: wait at least {PAUSE:g} s before each attempt",
        )
        await back(room, page, f"the server refused every handshake for {REFUSING:g} s")
        frames = before + missed + await h.on_server(room.post, ("bob", "welcome back"))
        await resumed_once(room, page, frames, seen=before[-1]["id"])
        # Attempts still on their way would land now: give them a moment, then count.
        with contextlib.suppress(TimeoutError):
            await eventually(lambda: len(room.members) > 1, timeout=4 * PAUSE)
        expect(
            len(room.members) == 1,
            f"once the server let it in again, the page held "
            f"{len(room.members)} connections at once: each failed attempt started more "
            "than one new one (an attempt ends with a close, sometimes an error before it)",
        )


async def back(room: Room, page: Page, what: str, wait: float = 5) -> None:
    """Fail unless the page connects again (the server lets a second connection in) in time."""
    try:
        await eventually(lambda: len(room.accepted) > 1, timeout=wait)
    except TimeoutError:
        raise CheckFailed(
            f"{what} and the page did not connect again within {wait:g} s{room.why()}"
            f"{await page.raised()}"
        ) from None


async def resumed_once(room: Room, page: Page, frames: list[dict[str, Any]], seen: int) -> None:
    """Fail unless the page resumed and shows ``frames``, each once, in order."""
    shown = await shows(page, frames)
    asked = room.accepted[-1]
    wrong = loss(shown, frames)
    if asked is None:
        raise CheckFailed(
            "the page connected again without ?last_id=, so the server sent only its newest "
            f"{TAIL} messages" + (f": {wrong}" if wrong else "")
        )
    expect(
        not wrong,
        f"it had shown up to id {seen} and resumed with ?last_id={asked} (the server sent the "
        f"messages after it, then the newest once more, as if live): {wrong}"
        f"{await page.raised()}",
    )
