"""What a held WebSocket keeps once it is open: only what it still needs (lesson 09's budget).

The load test (``python -m loadtest``) measures the whole; these pin the parts the course cut:
uvicorn's parsed handshake is dropped once accepted, and an idle ``Peer`` keeps no backlog, no
writer task and no close event.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.http11 import Request

from course_server.realtime.fanout import Peer
from course_server.runner import SansIOProtocol

pytestmark = pytest.mark.anyio


class Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in {"sockname", "peername"} else default


def upgrade() -> Request:
    return Request(
        "/ws/echo",
        Headers(
            Host="127.0.0.1",
            Upgrade="websocket",
            Connection="Upgrade",
            **{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
        ),
    )


async def test_an_accepted_connection_no_longer_keeps_uvicorns_parsed_handshake() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # the test plays the app
        await asyncio.Event().wait()

    proto: Any = SansIOProtocol(config=Config(app), server_state=ServerState(), app_state={})
    proto.connection_made(Transport())
    proto.handle_connect(upgrade())
    assert proto.request is not None and proto.response is not None  # what uvicorn reads
    await proto.send({"type": "websocket.accept"})
    assert b"101 Switching Protocols" in proto.transport.written
    assert not hasattr(proto, "request") and not hasattr(proto, "response")
    assert proto.scope["headers"]  # the app still has every header
    for task in proto.tasks:
        task.cancel()
    proto.connection_lost(None)


async def test_an_idle_peer_holds_no_backlog_writer_or_close_event() -> None:
    peer = Peer(object())  # type: ignore[arg-type]  # never sends: the websocket is not used
    peer.start()
    assert (peer._backlog, peer._writer, peer._closed) == (None, None, None)
    await peer.aclose()
