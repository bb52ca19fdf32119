"""Lesson 02, WebSocket basics: echo, path and query parameters, message types, close codes."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

router = APIRouter()


@router.websocket("/ws/echo")
async def echo(websocket: WebSocket) -> None:
    """Text ``X`` comes back as ``You said: X``; bytes come back unchanged, as bytes."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(f"You said: {message['text']}")
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
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
