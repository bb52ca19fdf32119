"""Plausible wrong answers to lesson 02's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

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
            await websocket.send_json({"type": "error", "code": "invalid", "message": str(exc)})
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
                code = "invalid_json" if first["type"] == "json_invalid" else "invalid"
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
