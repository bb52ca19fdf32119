"""Checks for lesson 02's exercises: a text protocol with close codes, and validated JSON.

The examples are drawn afresh for every run (secrets, guesses, operands), so an answer shaped
like one fixed example cannot pass; the expected replies are computed, so any draw is fair.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from typing import Any

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.checks.talk import exchange
from course_server.clients.websocket import Attempt, attempt
from course_server.lab.waiting import eventually
from course_server.runner import RunningServer

# --- 02.1 Guess the number -------------------------------------------------------------------

guess = exercise("02.1", "Guess the number", target="guess")

MAX_WRONG = 5
NOT_NUMBERS = ["forty", "4.2", "", "²", "1e3", "0x1F", "4 2", "--3", "四十二"]
"""Frames that are not whole numbers: a word, a decimal, nothing, a superscript digit (which
``str.isdigit`` accepts and ``int`` refuses), exponent and hex notation, non-ASCII text."""


def hint(secret: int, number: int) -> str:
    return "higher" if secret > number else "lower"


def wrong_guesses(rng: random.Random, secret: int, count: int) -> list[int]:
    """``count`` distinct wrong guesses: just below and just above the secret, one negative.

    With the secret's neighbours among the guesses, only the secret itself gets their hints.
    """
    below, above = secret - 1, secret + 1
    negative = -rng.randint(1, 999)
    picked = {below, above, negative if negative != secret else negative - 1}
    while len(picked) < count:
        number = rng.randint(-999, 999)
        if number != secret:
            picked.add(number)
    guesses = list(picked)[:count]
    rng.shuffle(guesses)
    return guesses


async def serve_game(h: Harness, endpoint: Any) -> RunningServer:
    h.websocket("/guess", endpoint)
    return await h.serve()


async def play(server: RunningServer, secret: int, *guesses: str) -> Attempt:
    """One game against the learner's endpoint, from the handshake to the close."""
    try:
        seen = await attempt(
            server.ws(f"/guess?secret={secret}"), *guesses, timeout=3, close_timeout=0.5
        )
    except TimeoutError:
        raise CheckFailed(
            f"after {', '.join(map(repr, guesses))} (secret {secret}) the game never closed the "
            "connection"
        ) from None
    expect(seen.accepted, f"the handshake was refused with HTTP {seen.http_status}: accept first")
    return seen


async def went_on(h: Harness, what: str) -> None:
    """Fail if the endpoint raised after its close: it went on with the closed connection."""
    with contextlib.suppress(TimeoutError):  # the wait for an error that should never come
        await eventually(lambda: bool(h.errors), timeout=0.3)
        raise CheckFailed(  # the verdict adds what it raised
            f"{what}, your code went on with the closed connection: return once it has closed"
        )


@guess.check("answers higher and lower, negative numbers too")
async def _hints(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    server = await serve_game(h, endpoint)
    # Two games, two secrets: no one number gives both games' hints.
    for secret in rng.sample(range(-500, 501), 2):
        guesses = wrong_guesses(rng, secret, MAX_WRONG - 1)
        replies = await exchange(server.ws(f"/guess?secret={secret}"), *map(str, guesses))
        expected = [hint(secret, number) for number in guesses]
        expect(
            replies == expected,
            f"with secret {secret}, for {guesses} the replies were {replies}, not {expected}",
        )


@guess.check("closes with 1000 'Correct' on the right guess")
async def _win(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    secret = rng.randint(-500, 500)
    (wrong,) = wrong_guesses(rng, secret, 1)
    server = await serve_game(h, endpoint)
    # A finished game must not answer the guess after the right one.
    seen = await play(server, secret, str(wrong), str(secret), str(wrong))
    expect(
        seen.received == [hint(secret, wrong)],
        f"with secret {secret}, received {seen.received} for {wrong}, {secret}, {wrong}",
    )
    expect(
        (seen.close_code, seen.close_reason) == (1000, "Correct"),
        f"closed with {seen.close_code} {seen.close_reason!r}: close(1000, 'Correct')",
    )
    await went_on(h, "after closing with 1000 'Correct'")


@guess.check("a message that is not a whole number gets a reply, and the game goes on")
async def _not_a_number(h: Harness, endpoint: Any) -> None:
    secret = random.randint(-500, 500)
    server = await serve_game(h, endpoint)
    seen = await play(server, secret, *NOT_NUMBERS, str(secret))
    answered = dict(zip(NOT_NUMBERS, seen.received, strict=False))
    wrong = {text: reply for text, reply in answered.items() if reply != "send a whole number"}
    expect(
        len(seen.received) == len(NOT_NUMBERS) and not wrong,
        f"each of {NOT_NUMBERS} should get 'send a whole number'; the replies were "
        f"{seen.received} (closed {seen.close_code} {seen.close_reason!r})",
    )
    expect(
        seen.close_code == 1000,
        f"the right guess after them closed with {seen.close_code}: they are not guesses",
    )


@guess.check("the fifth wrong guess closes with 4000 'Out of guesses', without a hint")
async def _lose(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    secret = rng.randint(-500, 500)
    # Five wrong guesses, one of them said twice: a guess repeated is wrong again.
    numbers = wrong_guesses(rng, secret, MAX_WRONG - 1)
    numbers.insert(rng.randint(1, MAX_WRONG - 1), rng.choice(numbers))
    sent = [*map(str, numbers[:2]), "forty", *map(str, numbers[2:]), str(secret)]
    server = await serve_game(h, endpoint)
    seen = await play(server, secret, *sent)
    hints = [hint(secret, n) for n in numbers[:-1]]
    expected = [*hints[:2], "send a whole number", *hints[2:]]
    expect(
        seen.received == expected,
        f"with secret {secret}, for {sent} received {seen.received}, not {expected}: four "
        "hints, no hint for the fifth wrong guess (a repeated guess counts again), and 'forty' "
        "does not count",
    )
    expect(
        (seen.close_code, seen.close_reason) == (4000, "Out of guesses"),
        f"closed with {seen.close_code} {seen.close_reason!r} after five wrong guesses: "
        "close(4000, 'Out of guesses')",
    )


@guess.check("the fifth guess still wins when it is right")
async def _last_chance(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    secret = rng.randint(-500, 500)
    numbers = wrong_guesses(rng, secret, MAX_WRONG - 1)
    server = await serve_game(h, endpoint)
    seen = await play(server, secret, *map(str, numbers), str(secret))
    expect(
        (seen.close_code, seen.close_reason) == (1000, "Correct"),
        f"four wrong guesses, then the secret {secret}: closed with {seen.close_code} "
        f"{seen.close_reason!r}, not 1000 'Correct'",
    )


@guess.check("each game has its own secret and counts its own guesses")
async def _own_game(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    server = await serve_game(h, endpoint)
    first = rng.randint(-500, 500)
    await exchange(server.ws(f"/guess?secret={first}"), *map(str, wrong_guesses(rng, first, 3)))
    second = first + rng.choice([-1, 1]) * rng.randint(50, 400)

    async def counts_from_zero(secret: int, game: str, after: str) -> None:
        """Four wrong guesses in a new game with ``secret`` get four hints, not a close."""
        numbers = wrong_guesses(rng, secret, MAX_WRONG - 1)
        try:
            replies = await exchange(server.ws(f"/guess?secret={secret}"), *map(str, numbers))
        except CheckFailed as exc:
            raise CheckFailed(f"{game}, {after}: {exc}; each connection counts from zero") from None
        expected = [hint(secret, number) for number in numbers]
        expect(
            replies == expected,
            f"{game} with secret {secret} answered {numbers} with {replies}, not {expected}",
        )

    await counts_from_zero(second, "a second game", "after a first one with three wrong guesses")
    # A third game with the first one's secret: a count kept per secret shows here.
    await counts_from_zero(
        first,
        "a third game",
        f"with the secret {first} of a first game left after three wrong guesses",
    )


# --- 02.2 A JSON calculator ------------------------------------------------------------------

calculator = exercise("02.2", "A JSON calculator", target="calculator")

OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
NOT_JSON = [
    "six plus three",
    "{",
    '{"op": "add", "a": 1,',
    "{'op': 'add', 'a': 1, 'b': 2}",
    "½ + ½",
    "",
]
WRONG_SHAPE: list[Any] = [
    {"op": "pow", "a": 2, "b": 3},
    {"op": "ADD", "a": 2, "b": 3},
    {"op": "add", "a": 1},
    {"a": 1, "b": 2},
    {"op": "add", "a": "x", "b": 1},
    {"op": "mul", "a": 1, "b": None},
    [1, 2],
    42,
    "add",
    {},
]


def operands(rng: random.Random) -> tuple[float, float]:
    """Two numbers: integers or decimals, negative or not, never a zero divisor."""
    a = rng.choice([rng.randint(-1000, 1000), round(rng.uniform(-100, 100), 2)])
    b = rng.choice([rng.randint(1, 50), -rng.randint(1, 50), round(rng.uniform(0.5, 9), 3)])
    return a, b


def requests_for_every_op(rng: random.Random) -> list[dict[str, Any]]:
    """Random requests for each op, divisions that are not exact, and b = 0 where it is fine."""
    requests = []
    for op in OPS:
        for _ in range(2):
            a, b = operands(rng)
            requests.append({"op": op, "a": a, "b": b})
        if op != "div":
            requests.append({"op": op, "a": rng.randint(-99, 99), "b": 0})
    odd = 2 * rng.randint(1, 500) + 1
    requests.append({"op": "div", "a": odd, "b": 2})
    # A third that never ends: a result rounded (or cut) to any number of decimals shows.
    requests.append({"op": "div", "a": 3 * rng.randint(1, 300) + 1, "b": 3})
    rng.shuffle(requests)
    return requests


def right_value(reply: Any, request: dict[str, Any]) -> bool:
    if not (isinstance(reply, dict) and reply.get("type") == "result"):
        return False
    value = reply.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isclose(value, OPS[request["op"]](request["a"], request["b"]), rel_tol=1e-9)


async def calculate(h: Harness, endpoint: Any, *requests: Any) -> list[Any]:
    h.websocket("/calc", endpoint)
    server = await h.serve()
    return await exchange(server.ws("/calc"), *requests, as_json=True)


def error_code(reply: Any) -> Any:
    return reply.get("code") if isinstance(reply, dict) and reply.get("type") == "error" else None


def shown(request: Any) -> str:
    return request if isinstance(request, str) else json.dumps(request, ensure_ascii=False)


@calculator.check("computes add, sub, mul and div, on any numbers")
async def _results(h: Harness, endpoint: Any) -> None:
    requests = requests_for_every_op(random.Random())
    replies = await calculate(h, endpoint, *requests)
    for request, reply in zip(requests, replies, strict=True):
        want = OPS[request["op"]](request["a"], request["b"])
        expect(
            right_value(reply, request),
            f"{shown(request)} got {reply}, not {{'type': 'result', 'value': {want!r}}}",
        )


@calculator.check("text that is not JSON gets an invalid_json error, and the connection stays")
async def _not_json(h: Harness, endpoint: Any) -> None:
    a, b = operands(random.Random())
    after = {"op": "add", "a": a, "b": b}
    replies = await calculate(h, endpoint, *NOT_JSON, after)
    for text, reply in zip(NOT_JSON, replies, strict=False):
        expect(error_code(reply) == "invalid_json", f"{text!r} got {reply}, not invalid_json")
    expect(right_value(replies[-1], after), f"the next request got {replies[-1]}")


@calculator.check("JSON of the wrong shape gets an invalid_message error, and the connection stays")
async def _wrong_shape(h: Harness, endpoint: Any) -> None:
    a, b = operands(random.Random())
    after = {"op": "mul", "a": a, "b": b}
    replies = await calculate(h, endpoint, *(json.dumps(w) for w in WRONG_SHAPE), after)
    for request, reply in zip(WRONG_SHAPE, replies, strict=False):
        expect(
            error_code(reply) == "invalid_message",
            f"{shown(request)} got {reply}, not invalid_message",
        )
    expect(right_value(replies[-1], after), f"the next request got {replies[-1]}")


@calculator.check("division by zero gets a division_by_zero error, and the connection stays")
async def _zero(h: Harness, endpoint: Any) -> None:
    rng = random.Random()
    zeros = [{"op": "div", "a": a, "b": b} for a, b in ((rng.randint(-99, 99), 0), (0, 0.0))]
    after = {"op": "div", "a": rng.randint(1, 99), "b": rng.randint(1, 9)}
    replies = await calculate(h, endpoint, *zeros, after)
    for request, reply in zip(zeros, replies, strict=False):
        expect(
            error_code(reply) == "division_by_zero",
            f"{shown(request)} got {reply}, not division_by_zero",
        )
    expect(right_value(replies[-1], after), f"the next request got {replies[-1]}")


@calculator.check("an error frame has a type, a code and a message")
async def _error_frame(h: Harness, endpoint: Any) -> None:
    bad = ["1 + 1", {"op": "pow", "a": 1, "b": 2}, {"op": "div", "a": 1, "b": 0}]
    replies = await calculate(h, endpoint, *bad)
    for request, reply in zip(bad, replies, strict=True):
        message = reply.get("message") if isinstance(reply, dict) else None
        expect(
            error_code(reply) is not None and isinstance(message, str) and message.strip(),
            f"{shown(request)} got {reply}: send {{'type': 'error', 'code': ..., "
            "'message': 'what was wrong'}",
        )


@calculator.check("a binary frame closes the connection with 1003, even if it holds JSON")
async def _binary(h: Harness, endpoint: Any) -> None:
    h.websocket("/calc", endpoint)
    server = await h.serve()
    a, b = operands(random.Random())
    frame = json.dumps({"op": "add", "a": a, "b": b}).encode()
    try:
        seen = await attempt(server.ws("/calc"), frame, timeout=1.5, close_timeout=0.5)
    except TimeoutError:
        raise CheckFailed("after a binary frame the connection stayed open: close it") from None
    expect(
        seen.close_code == 1003 and not seen.received,
        f"a binary frame holding {frame!r}: {seen}; close with 1003 (unsupported data)",
    )
