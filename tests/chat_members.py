"""A member of a chat room in Python, beside the pages under test (``websockets``' sync API)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from conftest import wait_timeout
from websockets.sync.client import ClientConnection, connect

from course_server import RunningServer

Frame = dict[str, Any]


@contextmanager
def member(server: RunningServer, room: str, name: str) -> Iterator[ClientConnection]:
    """A Python client in ``room`` as ``name``, once its own join has come back."""
    url = server.ws(f"/chat/{quote(room, safe='')}/{quote(name, safe='')}")
    with connect(url, open_timeout=wait_timeout(5)) as ws:
        until(ws, lambda f: f["type"] == "join" and f["username"] == name)
        yield ws


def until(ws: ClientConnection, predicate: Callable[[Frame], bool]) -> Frame:
    """Read frames until one satisfies ``predicate``; TimeoutError past the deadline."""
    deadline = time.monotonic() + wait_timeout(5)
    while True:
        frame = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        if predicate(frame):
            return frame


def say(ws: ClientConnection, content: str) -> int:
    """Send a message and return the id the server gave it (from its ack)."""
    key = uuid.uuid4().hex
    ws.send(json.dumps({"type": "message", "content": content, "client_msg_id": key}))
    return until(ws, lambda f: f["type"] == "ack" and f["client_msg_id"] == key)["id"]
