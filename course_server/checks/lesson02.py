"""Checks for lesson 02's exercises: a text protocol with close codes, and validated JSON."""

from __future__ import annotations

from typing import Any

from course_server.checks import CheckFailed, exercise, expect
from course_server.checks.harness import Harness
from course_server.checks.talk import exchange
from course_server.clients import Attempt, attempt

# --- 02.1 Guess the number -------------------------------------------------------------------

guess = exercise("02.1", "Guess the number", target="guess")


async def play(h: Harness, endpoint: Any, *guesses: str, secret: int = 42) -> Attempt:
    """One game against the learner's endpoint, from the handshake to the close."""
    h.websocket("/guess", endpoint)
    server = await h.serve()
    try:
        seen = await attempt(
            server.ws(f"/guess?secret={secret}"), *guesses, timeout=3, close_timeout=0.5
        )
    except TimeoutError:
        raise CheckFailed(
            f"after {', '.join(guesses)} the game never closed the connection"
        ) from None
    expect(seen.accepted, f"the handshake was refused with HTTP {seen.http_status}: accept first")
    return seen


@guess.check("answers higher and lower")
async def _hints(h: Harness, endpoint: Any) -> None:
    h.websocket("/guess", endpoint)
    server = await h.serve()
    replies = await exchange(server.ws("/guess?secret=42"), "10", "90", "41")
    expect(replies == ["higher", "lower", "higher"], f"for 10, 90, 41 the replies were {replies}")


@guess.check("closes with 1000 'Correct' on the right guess")
async def _win(h: Harness, endpoint: Any) -> None:
    seen = await play(h, endpoint, "50", "42", "7")  # a finished game must not answer the 7
    expect(seen.received == ["lower"], f"received {seen.received} for 50, 42")
    expect(
        (seen.close_code, seen.close_reason) == (1000, "Correct"),
        f"closed with {seen.close_code} {seen.close_reason!r}: close(1000, 'Correct')",
    )


@guess.check("a message that is not a whole number gets a reply, and the game goes on")
async def _not_a_number(h: Harness, endpoint: Any) -> None:
    seen = await play(h, endpoint, "forty", "4.2", "42")
    expected = ["send a whole number", "send a whole number"]
    expect(
        seen.received == expected,
        f"received {seen.received} for 'forty', '4.2', 42 (closed {seen.close_code})",
    )
    expect(seen.close_code == 1000, f"the right guess after them closed with {seen.close_code}")


@guess.check("five wrong guesses close with 4000 'Out of guesses'")
async def _lose(h: Harness, endpoint: Any) -> None:
    seen = await play(h, endpoint, "1", "2", "forty", "3", "4", "5")
    expect(
        len(seen.received) == 5 and seen.received[2] == "send a whole number",
        f"received {seen.received}: four hints, and not a number does not count as a guess",
    )
    expect(
        (seen.close_code, seen.close_reason) == (4000, "Out of guesses"),
        f"closed with {seen.close_code} {seen.close_reason!r} after five wrong guesses",
    )


# --- 02.2 A JSON calculator ------------------------------------------------------------------

calculator = exercise("02.2", "A JSON calculator", target="calculator")


async def calculate(h: Harness, endpoint: Any, *requests: Any) -> list[Any]:
    h.websocket("/calc", endpoint)
    server = await h.serve()
    return await exchange(server.ws("/calc"), *requests, as_json=True)


def error_code(reply: Any) -> Any:
    return reply.get("code") if isinstance(reply, dict) and reply.get("type") == "error" else None


@calculator.check("computes add, sub, mul and div")
async def _results(h: Harness, endpoint: Any) -> None:
    requests = [{"op": op, "a": 6, "b": 3} for op in ("add", "sub", "mul", "div")]
    replies = await calculate(h, endpoint, *requests)
    expected = [{"type": "result", "value": value} for value in (9, 3, 18, 2)]
    expect(replies == expected, f"for 6 and 3 the replies were {replies}")


@calculator.check("text that is not JSON gets an invalid_json error, and the connection stays")
async def _not_json(h: Harness, endpoint: Any) -> None:
    replies = await calculate(h, endpoint, "six plus three", {"op": "add", "a": 6, "b": 3})
    expect(error_code(replies[0]) == "invalid_json", f"'six plus three' got {replies[0]}")
    expect(replies[1] == {"type": "result", "value": 9}, f"the next request got {replies[1]}")


@calculator.check("a request of the wrong shape gets an invalid error")
async def _wrong_shape(h: Harness, endpoint: Any) -> None:
    wrong = [{"op": "pow", "a": 2, "b": 3}, {"op": "add", "a": 1}, {"op": "add", "a": "x", "b": 1}]
    replies = await calculate(h, endpoint, *wrong, [1, 2])
    for request, reply in zip([*wrong, [1, 2]], replies, strict=True):
        expect(error_code(reply) == "invalid", f"{request} got {reply}")


@calculator.check("division by zero gets a division_by_zero error")
async def _zero(h: Harness, endpoint: Any) -> None:
    replies = await calculate(
        h, endpoint, {"op": "div", "a": 1, "b": 0}, {"op": "mul", "a": 2, "b": 2}
    )
    expect(error_code(replies[0]) == "division_by_zero", f"1 / 0 got {replies[0]}")
    expect(replies[1] == {"type": "result", "value": 4}, f"the next request got {replies[1]}")


@calculator.check("a binary frame closes the connection with 1003")
async def _binary(h: Harness, endpoint: Any) -> None:
    h.websocket("/calc", endpoint)
    server = await h.serve()
    try:
        seen = await attempt(server.ws("/calc"), b"\x06\x03", timeout=1.5, close_timeout=0.5)
    except TimeoutError:
        raise CheckFailed("after a binary frame the connection stayed open: close it") from None
    expect(
        seen.close_code == 1003,
        f"a binary frame: {seen}; close with 1003 (unsupported data)",
    )
