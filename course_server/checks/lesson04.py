"""Checks for lesson 04's exercises: resume by ``last_id``, and a token bucket.

``catch_up`` is plugged into a small chat endpoint (history in a ``deque(maxlen=5)``, ids 1, 2,
3, …) and driven by real clients. The token bucket runs on a fake clock that the check moves, so
"one second later" takes no second and never depends on the machine's speed.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any

from fastapi import WebSocket
from websockets.asyncio.client import ClientConnection

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.checks.talk import dial, receive
from course_server.waiting import eventually

# --- 04.1 resume by last_id ------------------------------------------------------------------

resume = exercise(
    "04.1",
    "Resume after a reconnect, by last_id",
    target="catch_up",
    references=("course_server.roomlog:MemoryLog",),
)

HISTORY = 5
MARKER = "-- live --"


class Chat:
    """The check's chat endpoint around the learner's ``catch_up``; its state, for the check."""

    def __init__(self, h: Harness, catch_up: Any) -> None:
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.members: list[WebSocket] = []
        ids = itertools.count(1)

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
    h: Harness, catch_up: Any, posted: int, last_id: int
) -> tuple[dict[str, Any], list[int]]:
    chat = Chat(h, catch_up)
    server = await h.serve()
    async with dial(server.ws("/chat")) as poster:
        await post(poster, posted)
        first, ids = await reconnect(h, chat, poster, last_id)
    expect(first.get("type") == "resume", f"catch_up raised, or returned {first}")
    return first, ids


def said(first: dict[str, Any], ids: list[int], complete: bool, expected: list[int]) -> str:
    return (
        f"after {first.get('after')}, catch_up returned complete={first.get('complete')} and "
        f"messages {ids}; expected complete={complete} and {expected}"
    )


@resume.check("sends exactly the messages after last_id")
async def _after(h: Harness, catch_up: Any) -> None:
    first, ids = await scenario(h, catch_up, posted=4, last_id=2)
    expect(first["complete"] is True and ids == [3, 4], said(first, ids, True, [3, 4]))


@resume.check("a client that is up to date gets nothing old")
async def _up_to_date(h: Harness, catch_up: Any) -> None:
    first, ids = await scenario(h, catch_up, posted=4, last_id=4)
    expect(first["complete"] is True and ids == [], said(first, ids, True, []))


@resume.check("counts by id, not by position, once old messages are dropped")
async def _by_id(h: Harness, catch_up: Any) -> None:
    first, ids = await scenario(h, catch_up, posted=8, last_id=5)  # the history holds 4…8
    expect(first["complete"] is True and ids == [6, 7, 8], said(first, ids, True, [6, 7, 8]))


@resume.check("says when messages were lost, and sends what is left")
async def _lost(h: Harness, catch_up: Any) -> None:
    first, ids = await scenario(h, catch_up, posted=8, last_id=1)  # 2 and 3 are gone
    expected = [4, 5, 6, 7, 8]
    expect(first["complete"] is False and ids == expected, said(first, ids, False, expected))


@resume.check("nothing is lost when the first message held is the next one")
async def _boundary(h: Harness, catch_up: Any) -> None:
    first, ids = await scenario(h, catch_up, posted=8, last_id=3)  # 4 is the oldest held
    expected = [4, 5, 6, 7, 8]
    expect(first["complete"] is True and ids == expected, said(first, ids, True, expected))


# --- 04.2 a token bucket ---------------------------------------------------------------------

bucket = exercise(
    "04.2",
    "A token bucket",
    target="TokenBucket",
    references=("course_server.ratelimit:TokenBucket", "course_server.ratelimit:UserBuckets"),
)


class FakeClock:
    """A clock that moves only when told to: ``clock()`` reads it, ``advance(s)`` moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def answers(bucket_class: Any, steps: list[float | int]) -> list[bool]:
    """Run a script on a bucket (rate 2, burst 5): a float advances the clock, an int is
    that many ``allow()`` calls. Returns the answers in order."""
    clock = FakeClock()
    tokens = bucket_class(rate=2, burst=5, clock=clock)
    said: list[bool] = []
    for step in steps:
        if isinstance(step, float):
            clock.advance(step)
        else:
            said.extend(tokens.allow() for _ in range(step))
    return said


def allowed(said: list[bool]) -> str:
    return "".join("Y" if answer else "n" for answer in said)


@bucket.check("a full bucket lets a burst through, then refuses")
async def _burst(h: Harness, bucket_class: Any) -> None:
    said = await h.call(answers, bucket_class, [7])
    expect(said == [True] * 5 + [False] * 2, f"7 calls at once: {allowed(said)}, not YYYYYnn")


@bucket.check("refills at rate tokens per second, fractions included")
async def _refill(h: Harness, bucket_class: Any) -> None:
    said = await h.call(answers, bucket_class, [5, 1.0, 3, 0.25, 1, 0.25, 1])
    expected = [True] * 5 + [True, True, False] + [False] + [True]
    expect(
        said == expected,
        f"5 calls, 1 s, 3 calls, 0.25 s, 1 call, 0.25 s, 1 call: {allowed(said)}, not "
        f"{allowed(expected)}",
    )


@bucket.check("never holds more than burst tokens")
async def _cap(h: Harness, bucket_class: Any) -> None:
    said = await h.call(answers, bucket_class, [5, 100.0, 7])
    expect(said[5:] == [True] * 5 + [False] * 2, f"after 100 s idle, 7 calls: {allowed(said[5:])}")


@bucket.check("limits a flood on a real WebSocket")
async def _flood(h: Harness, bucket_class: Any) -> None:
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
            return await receive(client, "the client")

        flood = [await ask(message) for message in "abcde"]
        clock.advance(2.0)
        later = [await ask(message) for message in "fgh"]
    expected = ["ok"] * 3 + ["rate_limited"] * 2
    expect(flood == expected, f"5 messages at once (rate 1, burst 3) got {flood}")
    expected = ["ok", "ok", "rate_limited"]
    expect(later == expected, f"2 s later, 3 more messages got {later}")
