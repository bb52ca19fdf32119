"""The naive version, for demonstrating failures — do not copy.

These are the seed chapter's ``ConnectionManager`` and ``UserConnectionManager``, as the chapter
writes them, mounted under ``/naive`` so lesson 03 can break them live. Their broadcasts
``await`` each send in turn over a list that disconnects change, so:

- one client that stops reading stalls every broadcast, and with it every sender;
- one dead client makes ``send_text`` raise inside the *sender's* loop: the sender is the one
  removed and dropped, and the clients after the dead one miss the message;
- a disconnect while a broadcast is waiting shifts the list under the loop: someone is skipped.

``course_server.lessons.broadcast`` serves the same endpoints without those failures.

Two changes from the chapter, neither touching the broadcast logic: ``print`` became a DEBUG log
(prints from the server's thread would land in whichever notebook cell happens to be running),
and each app gets its own managers (``app.state.naive``) instead of one module global, so two
servers in one process, as in the test suite, never share a list.
"""
# ruff: noqa: UP006, UP035 -- the chapter's ``typing.List``/``Dict``, kept as written
# The chapter's untyped signatures, kept as written (the lessons show them):
# mypy: disable-error-code="no-untyped-def, type-arg"

from __future__ import annotations

import dataclasses
import logging
from typing import Dict, List

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

logger = logging.getLogger(__name__)
router = APIRouter()


class ConnectionManager:
    """
    Manage all WebSocket connections

    Responsibilities:
    - Track active connections
    - Send to specific client
    - Broadcast to all
    - Handle disconnection
    """

    def __init__(self):
        # All active connections
        self.active_connections: List[WebSocket] = []

    async def connect(self, websocket: WebSocket):
        """Accept and store new connection"""
        await websocket.accept()
        self.active_connections.append(websocket)
        logger.debug(f"New connection. Total: {len(self.active_connections)}")

    def disconnect(self, websocket: WebSocket):
        """Remove disconnected client"""
        self.active_connections.remove(websocket)
        logger.debug(f"Client disconnected. Total: {len(self.active_connections)}")

    async def send_personal_message(self, message: str, websocket: WebSocket):
        """Send message to specific client"""
        await websocket.send_text(message)

    async def broadcast(self, message: str):
        """Send message to ALL connected clients"""
        for connection in self.active_connections:
            await connection.send_text(message)

    async def broadcast_except(self, message: str, exclude: WebSocket):
        """Send to all except sender"""
        for connection in self.active_connections:
            if connection != exclude:
                await connection.send_text(message)


class UserConnectionManager:
    """
    Track connections by user ID

    Use when you need to:
    - Send to specific user
    - Handle multiple devices per user
    """

    def __init__(self):
        # user_id -> list of connections (for multiple devices)
        self.connections: Dict[str, List[WebSocket]] = {}

    async def connect(self, user_id: str, websocket: WebSocket):
        await websocket.accept()
        if user_id not in self.connections:
            self.connections[user_id] = []
        self.connections[user_id].append(websocket)

    def disconnect(self, user_id: str, websocket: WebSocket):
        if user_id in self.connections:
            self.connections[user_id].remove(websocket)
            if not self.connections[user_id]:
                del self.connections[user_id]

    async def send_to_user(self, user_id: str, message: str):
        """Send to all devices of a user"""
        if user_id in self.connections:
            for websocket in self.connections[user_id]:
                await websocket.send_text(message)

    def is_online(self, user_id: str) -> bool:
        return user_id in self.connections

    def online_users(self) -> List[str]:
        return list(self.connections.keys())


@dataclasses.dataclass
class NaiveManagers:
    """The chapter's two global managers, one pair per app (``app.state.naive``)."""

    manager: ConnectionManager = dataclasses.field(default_factory=ConnectionManager)
    user_manager: UserConnectionManager = dataclasses.field(default_factory=UserConnectionManager)


@router.websocket("/ws/broadcast")
async def websocket_endpoint(websocket: WebSocket):
    manager = websocket.app.state.naive.manager
    await manager.connect(websocket)
    try:
        while True:
            data = await websocket.receive_text()
            # Broadcast to all clients
            await manager.broadcast(f"Someone said: {data}")
    except WebSocketDisconnect:
        manager.disconnect(websocket)
        await manager.broadcast("A user left the chat")


@router.websocket("/ws/users/{user_id}")
async def user_websocket(websocket: WebSocket, user_id: str):
    user_manager = websocket.app.state.naive.user_manager
    await user_manager.connect(user_id, websocket)

    # Notify others
    for other_user in user_manager.online_users():
        if other_user != user_id:
            await user_manager.send_to_user(other_user, f"{user_id} joined!")

    try:
        while True:
            data = await websocket.receive_json()
            # Send to specific user
            if data["type"] == "private_message":
                await user_manager.send_to_user(data["to"], f"From {user_id}: {data['message']}")
    except WebSocketDisconnect:
        user_manager.disconnect(user_id, websocket)
