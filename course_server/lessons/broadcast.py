"""Lesson 03, connection management done right: ``/ws/broadcast`` and ``/ws/users/{user_id}``.

The same two endpoints as the seed's managers (``naive.py``), on ``fanout``'s ``Peer`` and
``Group``: a broadcast only queues, each connection has its own writer and a bounded queue, and
a client that falls a whole queue behind is cut off with 4008. So a dead client cannot raise in
someone else's loop, a stalled one cannot slow anyone down, and nothing iterates over a
collection that a disconnect can change.

The state lives on the app (``app.state.broadcast``), one per server, never in module globals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, Field, ValidationError

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.fanout import Group, Peer, PeerState
from course_server.realtime.messages import ErrorCode, error, explain
from course_server.realtime.names import BadName, plain_name
from course_server.realtime.ratelimit import flood_guard
from course_server.security.secure import identify, refuse_impostor

router = APIRouter()


class UserDirectory:
    """User id → the ``Group`` of that user's open connections, one per device.

    A user with no connection has no entry at all, so the directory never outgrows the set of
    users online right now.
    """

    def __init__(self) -> None:
        self._users: dict[str, Group] = {}

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def online(self) -> list[str]:
        return sorted(self._users)

    def devices(self, user_id: str) -> int:
        group = self._users.get(user_id)
        return len(group) if group is not None else 0

    def add(self, user_id: str, peer: Peer) -> None:
        self._users.setdefault(user_id, Group()).add(peer)

    def remove(self, user_id: str, peer: Peer) -> None:
        """Forget one device; the user's entry goes with the last one."""
        group = self._users.get(user_id)
        if group is None:
            return
        group.discard(peer)
        if not len(group):
            del self._users[user_id]

    def send_to(self, user_id: str, message: str) -> int:
        """Queue ``message`` for every device of ``user_id``; return how many took it."""
        group = self._users.get(user_id)
        return group.broadcast(message) if group is not None else 0

    def send_to_all_but(self, user_id: str, message: str) -> int:
        """Queue ``message`` for every device of every other user."""
        return sum(g.broadcast(message) for u, g in list(self._users.items()) if u != user_id)


@dataclasses.dataclass
class BroadcastState:
    """Who is connected to this lesson's endpoints (``app.state.broadcast``)."""

    everyone: Group = dataclasses.field(default_factory=Group)
    users: UserDirectory = dataclasses.field(default_factory=UserDirectory)


class PrivateMessage(BaseModel):
    """What a client sends to ``/ws/users/{user_id}``."""

    type: Literal["private_message"]
    to: str = Field(min_length=1)
    message: str


async def guarded(websocket: WebSocket, peer: Peer, *, error_frames: bool) -> AsyncIterator[str]:
    """The text frames ``peer`` sends within its rate budget (lesson 09), as they arrive.

    A binary frame closes with 1003. Over the budget, a protocol with ``error_frames``
    (``/ws/users``) answers ``rate_limited`` and closes with 1008 if the flood goes on; one
    without (``/ws/broadcast``) closes with 1008 at the first frame over the budget.
    """
    settings = websocket.app.state.settings
    budget = (await identify(websocket)).budget
    with flood_guard(websocket.app.state.user_buckets, budget, settings.rate_limit) as guard:
        async for message in peer.incoming():
            if peer.state is not PeerState.OPEN:
                continue  # closing: what arrives meanwhile is dropped
            text = message.get("text")
            if text is None:
                peer.close(CloseCode.UNSUPPORTED_DATA, "text frames only")
                continue
            if guard.admit(peer, peer.send if error_frames else None):
                yield text


@router.websocket("/ws/broadcast")
async def broadcast_endpoint(websocket: WebSocket) -> None:
    """Text ``X`` reaches everyone as ``Someone said: X``; a leaver's goodbye reaches the rest."""
    everyone: Group = websocket.app.state.broadcast.everyone
    await websocket.accept()
    peer = websocket.app.state.peers.open(websocket)
    everyone.add(peer)
    try:
        async for text in guarded(websocket, peer, error_frames=False):
            everyone.broadcast(f"Someone said: {text}")
    finally:
        everyone.discard(peer)
        await peer.aclose()
        everyone.broadcast("A user left the chat")


@router.websocket("/ws/users/{user_id}")
async def user_endpoint(websocket: WebSocket, user_id: str) -> None:
    """Private messages to every device of a user; other users hear ``{user_id} joined!``.

    ``user_id`` is a name like the chat's: a registered user's needs that user's token
    (``secure.refuse_impostor``, 4003), a bad one closes with 1008. A message that is not a
    valid ``PrivateMessage`` gets one JSON error frame back and the connection stays open. A
    message to a user who is offline goes nowhere, as in the seed.
    """
    users: UserDirectory = websocket.app.state.broadcast.users
    await websocket.accept()
    try:
        user_id = plain_name("username", user_id)
    except BadName as exc:
        await websocket.close(CloseCode.INVALID_NAME, str(exc))
        return
    if await refuse_impostor(websocket, user_id):  # before it can receive anyone's messages
        return
    peer = websocket.app.state.peers.open(websocket)
    users.send_to_all_but(user_id, f"{user_id} joined!")
    users.add(user_id, peer)
    try:
        async for text in guarded(websocket, peer, error_frames=True):
            try:
                private = PrivateMessage.model_validate_json(text)
                to = plain_name("username", private.to)
            except ValidationError as exc:
                peer.send(error(*explain(exc)))
                continue
            except BadName as exc:
                peer.send(error(ErrorCode.INVALID_MESSAGE, f"to: {exc}"))
                continue
            users.send_to(to, f"From {user_id}: {private.message}")
    finally:
        users.remove(user_id, peer)
        await peer.aclose()
