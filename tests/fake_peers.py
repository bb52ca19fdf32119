"""A stand-in for ``fanout.Peer`` for the tests of rooms that do no I/O (lessons 04 and 07)."""

from __future__ import annotations

import json
from typing import Any

from course_server.realtime.fanout import Peer, PeerState, encode

Frame = dict[str, Any]


class FakePeer:
    """Stands in for a ``Peer``: records every frame it is sent, and a close."""

    def __init__(self) -> None:
        self.state = PeerState.OPEN
        self.frames: list[Frame] = []
        self.closed: tuple[int, str] | None = None

    def send(self, message: Any) -> bool:
        self.frames.append(json.loads(encode(message)))
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.state = PeerState.CLOSING
        self.closed = (code, reason)

    def take(self) -> list[Frame]:
        frames, self.frames = self.frames, []
        return frames


def fake() -> Peer:
    return FakePeer()  # type: ignore[return-value]
