"""What a benchmark message looks like on each design's wire, and how a client finds it again.

Every design carries the same *content*, ``~B~SEQ:SENT_NS:padding``, wrapped its own way: the
course's chat in a JSON event, the naive and raw servers in plain text, Socket.IO in an event
packet. A receiver does not parse the wrapping; it finds the ``~B~`` marker and reads the two
numbers after it, so the client's cost per frame is the same whichever server it talks to.
``SENT_NS`` is the sender's ``time.monotonic_ns()``: one clock for every process on the machine.
Sequence number -1 is the sync marker the run starts with; it is not counted.
"""

from __future__ import annotations

import json
import random

MARK = "~B~"
SYNC = -1

_WORDS = (
    "ok see you at the standup then I pushed the fix for the flaky test can someone review "
    "my pull request before lunch the build is green again thanks deploy looks fine on staging "
    "what time is the meeting tomorrow lol that bug was in the cache all along"
).split()


def content(seq: int, sent_ns: int, padding: str = "") -> str:
    return f"{MARK}{seq}:{sent_ns}:{padding}"


def parse(text: str) -> tuple[int, int] | None:
    """``(seq, sent_ns)`` from any frame carrying a benchmark message, else None."""
    start = text.find(MARK)
    if start < 0:
        return None
    start += len(MARK)
    colon = text.find(":", start)
    end = text.find(":", colon + 1)
    return int(text[start:colon]), int(text[colon + 1 : end])


def chat_text(size: int, seed: int) -> str:
    """About ``size`` characters of chat-like words: compressible like real chat, not like xxxx."""
    if size <= 0:
        return ""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


class Wire:
    """A design's framing: the text a sender sends for some content; control frames to answer."""

    name = "plain"

    def frame(self, text: str) -> str:
        return text

    def control(self, text: str) -> str | None:
        """The reply to a control frame the protocol expects an answer to, if ``text`` is one."""
        return None


class ChatWire(Wire):
    """The course's chat protocol: ``{"type":"message","content":C}`` in, a JSON event out."""

    name = "chat"

    def frame(self, text: str) -> str:
        return json.dumps({"type": "message", "content": text}, separators=(",", ":"))


class SocketIOWire(Wire):
    """Engine.IO 4 / Socket.IO 5 over a WebSocket: just enough of it for a room broadcast.

    The server opens with ``0{…}`` (Engine.IO open); the client joins the default namespace
    with ``40``; events travel as ``42["event",data]``; the server's ``2`` (ping) wants ``3``.
    """

    name = "socketio"

    def frame(self, text: str) -> str:
        return "42" + json.dumps(["message", text], separators=(",", ":"))

    def control(self, text: str) -> str | None:
        if text == "2":
            return "3"
        if text.startswith("0{"):
            return "40"
        return None


WIRES: dict[str, Wire] = {w.name: w for w in (Wire(), ChatWire(), SocketIOWire())}
