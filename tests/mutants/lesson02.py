"""Plausible wrong answers to lesson 02's exercises, one bug each (see ``mutants``).

Equivalent survivors of ``scripts/mutate.py``: in 02.2, ``return`` after the 1003 close or a
disconnect deleted (the next ``receive()`` brings the disconnect, which ends the endpoint just
the same; in 02.1 the next ``receive_text()`` raises instead, which "closes with 1000 'Correct'"
rejects); in 02.1, ``secret > number`` → ``>=`` (equality was answered just before); in 02.2, the
1003 close without its reason (the prompt names no reason) and ``exc.errors()[-1]`` for ``[0]``
(invalid JSON gives one error; wrong shapes give only shape errors).
"""

from __future__ import annotations

import json
import operator
from typing import Literal

from fastapi import WebSocket
from pydantic import BaseModel, ValidationError

from mutants.registry import mutant

# --- 02.1 guess ------------------------------------------------------------------------------


def make_guess(*, handle_text: bool = True, lose_code: int = 4000, swap: bool = False):
    async def guess(websocket: WebSocket, secret: int) -> None:
        await websocket.accept()
        wrong = 0
        while True:
            text = await websocket.receive_text()
            if handle_text and not text.lstrip("-").isdigit():
                await websocket.send_text("send a whole number")
                continue
            number = int(text)  # without the check above: ValueError ends the endpoint
            if number == secret:
                await websocket.close(1000, "Correct")
                return
            wrong += 1
            if wrong == 5:
                await websocket.close(lose_code, "Out of guesses")
                return
            await websocket.send_text("higher" if (secret > number) != swap else "lower")

    return guess


mutant("02.1", "int() on text that is not a number ends the game")(make_guess(handle_text=False))
mutant("02.1", "out of guesses closes with 1000")(make_guess(lose_code=1000))
mutant("02.1", "higher and lower swapped")(make_guess(swap=True))


@mutant("02.1", "closes before accept: the client sees HTTP 403, not the code")
async def guess_closes_before_accept(websocket: WebSocket, secret: int) -> None:
    if secret:
        await websocket.close(4000, "Out of guesses")


# --- 02.2 calculator -------------------------------------------------------------------------


class Calculation(BaseModel):
    op: Literal["add", "sub", "mul", "div"]
    a: float
    b: float


OPERATIONS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
}


@mutant("02.2", "receive_json(): text that is not JSON ends the connection")
async def calculator_receive_json(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        data = await websocket.receive_json()
        try:
            request = Calculation.model_validate(data)
        except ValidationError as exc:
            await websocket.send_json(
                {"type": "error", "code": "invalid_message", "message": str(exc)}
            )
            continue
        if request.op == "div" and request.b == 0:
            await websocket.send_json({"type": "error", "code": "division_by_zero", "message": ""})
            continue
        value = OPERATIONS[request.op](request.a, request.b)
        await websocket.send_json({"type": "result", "value": value})


def make_calculator(*, zero_check: bool = True, binary_check: bool = True):
    async def calculator(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if binary_check and message.get("text") is None:
                await websocket.close(1003)
                return
            try:
                request = Calculation.model_validate_json(message.get("text") or "")
            except ValidationError as exc:
                first = exc.errors()[0]
                code = "invalid_json" if first["type"] == "json_invalid" else "invalid_message"
                await websocket.send_json({"type": "error", "code": code, "message": "bad"})
                continue
            if zero_check and request.op == "div" and request.b == 0:
                error = {"type": "error", "code": "division_by_zero", "message": "b is zero"}
                await websocket.send_json(error)
                continue
            value = OPERATIONS[request.op](request.a, request.b)
            await websocket.send_json({"type": "result", "value": value})

    return calculator


mutant("02.2", "division by zero raises")(make_calculator(zero_check=False))
mutant("02.2", "a binary frame is treated as bad JSON")(make_calculator(binary_check=False))


# --- 02.1 guess: more mistakes ---------------------------------------------------------------


def is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def make_game(
    *,
    is_number=is_int,
    parse=int,
    max_wrong: int = 5,
    count_first: bool = False,
    hint_before_losing: bool = False,
    win_reason: str = "Correct",
    lose_reason: str = "Out of guesses",
    fixed_secret: int | None = None,
):
    """The solution's game, with one rule changed; ``is_number`` decides what is a guess."""

    async def guess(websocket: WebSocket, secret: int) -> None:
        if fixed_secret is not None:
            secret = fixed_secret
        await websocket.accept()
        wrong = 0
        while True:
            text = await websocket.receive_text()
            if not is_number(text):
                await websocket.send_text("send a whole number")
                continue
            number = parse(text)
            if count_first:  # counts every guess, the right one too
                wrong += 1
            if count_first and wrong == max_wrong:  # checked before the right guess can win
                await websocket.close(4000, lose_reason)
                return
            if number == secret:
                await websocket.close(1000, win_reason)
                return
            if not count_first:
                wrong += 1
            if hint_before_losing:
                await websocket.send_text("higher" if secret > number else "lower")
            if wrong == max_wrong:
                await websocket.close(4000, lose_reason)
                return
            if not hint_before_losing:
                await websocket.send_text("higher" if secret > number else "lower")

    return guess


def is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


mutant("02.1", "str.isdigit(): a negative guess is 'not a whole number'")(
    make_game(is_number=str.isdigit)
)
mutant("02.1", "float(): '4.2' and '1e3' count as guesses")(
    make_game(is_number=is_float, parse=float)
)
mutant("02.1", "out of guesses at the fourth wrong guess")(make_game(max_wrong=4))
mutant("02.1", "out of guesses at the sixth wrong guess")(make_game(max_wrong=6))
mutant("02.1", "the fifth guess loses even when it is right")(make_game(count_first=True))
mutant("02.1", "the fifth wrong guess still gets a hint before the close")(
    make_game(hint_before_losing=True)
)
mutant("02.1", "closes a win with 1000 and no reason")(make_game(win_reason=""))
mutant("02.1", "loses with reason 'Game over'")(make_game(lose_reason="Game over"))
mutant("02.1", "cheat: the secret is always 42")(make_game(fixed_secret=42))

_wrong_guesses = 0  # the mistake: one count for every game the server plays


@mutant("02.1", "counts wrong guesses in a module-level variable, shared by every game")
async def guess_global_count(websocket: WebSocket, secret: int) -> None:
    global _wrong_guesses
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        try:
            number = int(text)
        except ValueError:
            await websocket.send_text("send a whole number")
            continue
        if number == secret:
            await websocket.close(1000, "Correct")
            return
        _wrong_guesses += 1
        if _wrong_guesses >= 5:
            await websocket.close(4000, "Out of guesses")
            return
        await websocket.send_text("higher" if secret > number else "lower")


# --- 02.2 calculator: more mistakes ----------------------------------------------------------


def make_calc(
    *,
    operations=OPERATIONS,
    parse_error=None,
    zero_any_op: bool = False,
    decode_binary: bool = False,
    with_message: bool = True,
    model: type[BaseModel] = Calculation,
    is_binary=lambda message: message.get("text") is None,
    binary_code: int = 1003,
    shown=lambda value: value,
    once: bool = False,
):
    """The solution's calculator with one rule changed.

    ``parse_error(exc)`` names the error code for a ValidationError (default: the solution's).
    """

    def code_for(exc: ValidationError) -> str:
        if parse_error is not None:
            return parse_error(exc)
        return "invalid_json" if exc.errors()[0]["type"] == "json_invalid" else "invalid_message"

    async def error(websocket: WebSocket, code: str, message: str) -> None:
        frame = {"type": "error", "code": code}
        if with_message:
            frame["message"] = message
        await websocket.send_json(frame)

    async def calculator(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if is_binary(message):
                if not decode_binary:
                    await websocket.close(binary_code, "send JSON text frames")
                    return
                text = message["bytes"].decode()
            try:
                request = model.model_validate_json(text)
            except ValidationError as exc:
                await error(websocket, code_for(exc), "bad request")
                continue
            if request.b == 0 and (zero_any_op or request.op == "div"):
                await error(websocket, "division_by_zero", "b is zero")
                continue
            value = operations[request.op](request.a, request.b)
            await websocket.send_json({"type": "result", "value": shown(value)})
            if once:
                return

    return calculator


class IntCalculation(BaseModel):
    op: Literal["add", "sub", "mul", "div"]
    a: int
    b: int


mutant("02.2", "floor division: 7 / 2 is 3")(
    make_calc(operations={**OPERATIONS, "div": operator.floordiv})
)
mutant("02.2", "sub computes b - a")(
    make_calc(operations={**OPERATIONS, "sub": lambda a, b: b - a})
)
mutant("02.2", "every ValidationError is invalid_json")(
    make_calc(parse_error=lambda e: "invalid_json")
)
mutant("02.2", "every ValidationError is invalid_message, not-JSON text too")(
    make_calc(parse_error=lambda e: "invalid_message")
)
mutant("02.2", "b = 0 is an error for every op")(make_calc(zero_any_op=True))
mutant("02.2", "decodes a binary frame and answers it")(make_calc(decode_binary=True))
mutant("02.2", "error frames carry no message")(make_calc(with_message=False))
mutant("02.2", "integers only: 2.5 is invalid")(make_calc(model=IntCalculation))
mutant("02.2", "not message.get('text'): an empty text frame is taken for a binary one")(
    make_calc(is_binary=lambda message: not message.get("text"))
)
mutant("02.2", "rounds every result to 2 decimals")(make_calc(shown=lambda value: round(value, 2)))
mutant("02.2", "closes on a binary frame with 1007 (invalid payload), not 1003")(
    make_calc(binary_code=1007)
)
mutant("02.2", "no loop: answers the first request, then returns")(make_calc(once=True))


@mutant("02.2", "Calculation(**json.loads(text)): JSON that is not an object crashes")
async def calculator_unpacks(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            await websocket.send_json({"type": "error", "code": "invalid_json", "message": "?"})
            continue
        try:
            request = Calculation(**data)
        except ValidationError as exc:
            await websocket.send_json(
                {"type": "error", "code": "invalid_message", "message": str(exc)}
            )
            continue
        if request.op == "div" and request.b == 0:
            await websocket.send_json({"type": "error", "code": "division_by_zero", "message": "0"})
            continue
        value = OPERATIONS[request.op](request.a, request.b)
        await websocket.send_json({"type": "result", "value": value})


@mutant("02.2", "cheat: answers 6 and 3's results whatever the operands")
async def calculator_fixed(websocket: WebSocket) -> None:
    await websocket.accept()
    fixed = {"add": 9, "sub": 3, "mul": 18, "div": 2}
    while True:
        text = await websocket.receive_text()
        try:
            request = Calculation.model_validate_json(text)
        except ValidationError as exc:
            code = (
                "invalid_json" if exc.errors()[0]["type"] == "json_invalid" else "invalid_message"
            )
            await websocket.send_json({"type": "error", "code": code, "message": "bad"})
            continue
        if request.op == "div" and request.b == 0:
            await websocket.send_json({"type": "error", "code": "division_by_zero", "message": "0"})
            continue
        await websocket.send_json({"type": "result", "value": fixed[request.op]})


# --- 02.1 guess: counting, and going on after the close --------------------------------------


@mutant("02.1", "no return after the close: the next receive_text() raises")
async def guess_goes_on(websocket: WebSocket, secret: int) -> None:
    await websocket.accept()
    wrong = 0
    while True:
        text = await websocket.receive_text()
        try:
            number = int(text)
        except ValueError:
            await websocket.send_text("send a whole number")
            continue
        if number == secret:
            await websocket.close(1000, "Correct")
        else:
            wrong += 1
            if wrong == 5:
                await websocket.close(4000, "Out of guesses")
            else:
                await websocket.send_text("higher" if secret > number else "lower")


_wrong_by_secret: dict[int, int] = {}  # the mistake: games with the same secret share a count


@mutant("02.1", "counts wrong guesses per secret in a module-level dict")
async def guess_count_per_secret(websocket: WebSocket, secret: int) -> None:
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        try:
            number = int(text)
        except ValueError:
            await websocket.send_text("send a whole number")
            continue
        if number == secret:
            _wrong_by_secret.pop(secret, None)
            await websocket.close(1000, "Correct")
            return
        _wrong_by_secret[secret] = _wrong_by_secret.get(secret, 0) + 1
        if _wrong_by_secret[secret] >= 5:
            _wrong_by_secret.pop(secret, None)
            await websocket.close(4000, "Out of guesses")
            return
        await websocket.send_text("higher" if secret > number else "lower")


@mutant("02.1", "counts distinct wrong guesses: a repeated guess is free")
async def guess_counts_a_set(websocket: WebSocket, secret: int) -> None:
    await websocket.accept()
    tried: set[int] = set()
    while True:
        text = await websocket.receive_text()
        try:
            number = int(text)
        except ValueError:
            await websocket.send_text("send a whole number")
            continue
        if number == secret:
            await websocket.close(1000, "Correct")
            return
        tried.add(number)
        if len(tried) == 5:
            await websocket.close(4000, "Out of guesses")
            return
        await websocket.send_text("higher" if secret > number else "lower")
