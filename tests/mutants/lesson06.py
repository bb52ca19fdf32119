"""Plausible wrong answers to lesson 06's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import asyncio
from typing import Literal

import jwt
from fastapi import WebSocket
from pydantic import BaseModel, ValidationError

from mutants.registry import mutant

# --- 06.1 first_message_auth -----------------------------------------------------------------

SECRET = "exercise-secret-not-for-production"


class Auth(BaseModel):
    type: Literal["auth"]
    token: str


def make_auth(*, timeout: float | None = 1.0, verify_exp: bool = True, bad_code: int = 4003):
    async def first_message_auth(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async with asyncio.timeout(timeout):
                first = await websocket.receive_text()
        except TimeoutError:
            await websocket.close(4002, "Authentication timeout")
            return
        try:
            auth = Auth.model_validate_json(first)
        except ValidationError:
            await websocket.close(4001, "Authentication required")
            return
        try:
            options = {"verify_exp": verify_exp}
            user = jwt.decode(auth.token, SECRET, algorithms=["HS256"], options=options)["sub"]
        except jwt.InvalidTokenError:
            await websocket.close(bad_code, "Invalid token")
            return
        await websocket.send_json({"type": "auth_success", "user_id": user})
        while True:
            await websocket.send_text(f"{user}: {await websocket.receive_text()}")

    return first_message_auth


mutant("06.1", "no deadline: a silent client waits forever")(make_auth(timeout=None))
mutant("06.1", "expired tokens are let in")(make_auth(verify_exp=False))
mutant("06.1", "a bad token closes with 4001, like a missing one")(make_auth(bad_code=4001))


@mutant("06.1", "the seed's way: the token in the query string, closed before accept")
async def query_token_auth(websocket: WebSocket, token: str | None = None) -> None:
    if token is None:
        await websocket.close(4001, "Token required")
        return
    await websocket.accept()


@mutant("06.1", "receive_json(): a first message that is not JSON crashes the endpoint")
async def crashing_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            first = await websocket.receive_json()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if first.get("type") != "auth":
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(first["token"], SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")
