"""Lesson 02, WebSocket basics: echo, message types, JSON, path and query parameters.

Every endpoint accepts first and then talks; how a connection ends (close codes, refusing a
handshake) is the next module's subject, ``closing.py``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.messages import explain

router = APIRouter()


@router.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    """Text ``X`` comes back as ``You said: X``; bytes come back unchanged, as bytes."""
    await websocket.accept()
    try:
        while True:
            # receive(), not receive_text(): the next frame may be text or bytes.
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(f"You said: {message['text']}")
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:  # a send to a client that just left
        return


@router.websocket("/ws/rooms/{room_id}")
async def room_echo(websocket: WebSocket, room_id: str) -> None:
    """The path parameter arrives like any FastAPI parameter: text ``X`` → ``[room_id] X``."""
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"[{room_id}] {text}")
    except WebSocketDisconnect:
        return


class Say(BaseModel):
    """What a client sends to ``/ws/json``: ``{"type": "say", "text": "Hello"}``."""

    type: Literal["say"]
    text: str = Field(min_length=1, max_length=200)


@router.websocket("/ws/json")
async def json_echo(websocket: WebSocket) -> None:
    """JSON in, JSON out, validated by ``Say``. Bad input gets an error frame, not a hang-up.

    ``receive_json()`` would raise on the first non-JSON frame and end the connection, so the
    endpoint reads text and lets pydantic parse and validate it in one step.
    """
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            try:
                say = Say.model_validate_json(text)
            except ValidationError as exc:
                code, message = explain(exc)  # the app's one rule: a code, a short message
                await websocket.send_json({"type": "error", "code": code, "message": message})
                continue
            await websocket.send_json({"type": "said", "text": say.text, "length": len(say.text)})
    except WebSocketDisconnect:
        return


GREETINGS = {"en": "Hello", "hi": "Namaste", "es": "Hola"}


@router.websocket("/ws/greet")
async def greet(
    websocket: WebSocket,
    name: str = Query(min_length=1, max_length=40),
    lang: Literal["en", "hi", "es"] = "en",
    times: int = Query(1, ge=1, le=3),
) -> None:
    """Query parameters, typed and validated by FastAPI: ``/ws/greet?name=Ada&lang=hi&times=2``.

    ``name`` is required. A missing or invalid parameter never reaches this function: FastAPI
    closes the handshake with 1008 before accept, which a real client sees as HTTP 403.
    """
    await websocket.accept()
    for _ in range(times):
        await websocket.send_text(f"{GREETINGS[lang]}, {name}!")
    await websocket.close(code=CloseCode.NORMAL_CLOSURE, reason="Greeted")
