"""``lab.stand_ins.FakePeer``s typed as the ``Peer`` a room takes (tests of lessons 04 and 07)."""

from __future__ import annotations

from typing import Any, cast

from course_server.lab.stand_ins import FakePeer
from course_server.realtime.fanout import Peer

Frame = dict[str, Any]


def fake() -> Peer:
    return cast(Peer, FakePeer())
