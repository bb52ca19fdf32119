"""Fuzz suite (lesson 09): generated frames against the chat while bystanders chat.

Hypothesis generates frames of every kind a hostile or broken client might send: random bytes
(binary, and as text frames that are mostly not UTF-8), random text, random JSON (deep, wide,
huge), messages with wrong types and edge-case unicode (NUL, BOM, bidi overrides, astral
characters, lone surrogates escaped in JSON and raw in bytes). Each is sent on one connection,
and its answer is checked before the next: an error frame with a documented code, a pong, the
message posted (and acked), or a documented close (1007: not UTF-8; 1009: too big), after which
the fuzzer reconnects. Meanwhile three bystanders chat in the same room; at the end each must
have every bystander message exactly once, in order, and the server must have logged nothing
but uvicorn's own line about invalid UTF-8.

Default: 300 frames, a few seconds. The full run (10,000 frames) is one command:

    COURSE_FUZZ_FRAMES=10000 .venv/bin/pytest tests/realtime/test_fuzz.py -s

It prints what was sent and how the server answered. Generation is derandomised, so a run is
reproducible; set ``COURSE_FUZZ_RANDOM=1`` to explore new frames.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bystanders import Bystanders
from conftest import wait_timeout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from course_server import RunningServer, Settings, start
from course_server.clients.misbehave import server_errors
from course_server.realtime.messages import ErrorCode, ErrorFrame, Ping, parse

FRAMES = int(os.environ.get("COURSE_FUZZ_FRAMES", "300"))
BATCH = 10  # frames per Hypothesis example
MAX_BYTES = 65_536  # the server's COURSE_MAX_MESSAGE_BYTES (its default)
UVICORN_UTF8_LOG = "ERROR: Invalid UTF-8 sequence received from client."

pytestmark = [
    pytest.mark.timeout(60 + FRAMES // 40),
    # A falsifying example may hold a 64 KB frame: report it anyway.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    # Keepalive pings draw their payloads from `random` in the server's and clients' threads,
    # which Hypothesis, when not derandomised, takes for a strategy using `random`.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

Frame = tuple[str, str | bytes]  # ("binary" | "raw" | "text", payload); raw: bytes as a text frame

# Strategies ---------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=25,
)
weird_text = st.sampled_from(
    [
        "\x00",
        "\ufeff",  # a byte order mark
        "\u202eevil",  # a right-to-left override
        "\u200b",  # zero width space
        "e\u0301",  # a combining accent
        "\U0001f600\u200d\U0001f4bb",  # an emoji sequence with a zero width joiner
        "\uffff",  # a noncharacter
        "\U0010ffff",
        "a" * 2000,
        "é" * 2001,
    ]
)
message_shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "ping", "Message", "", "pong"]) | json_values},
    optional={
        "content": st.text(max_size=30) | weird_text | json_values,
        "client_msg_id": st.text(max_size=70) | json_values,
        "username": st.text(max_size=10),
    },
)
escaped_surrogates = st.sampled_from(['"\\ud800"', '"\\udc00x"', '"\\ud83d"', '"\\udfff\\ud800"'])
invalid_utf8 = st.sampled_from(
    [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]
)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth if depth % 2 else '{"a":' * depth + "1" + "}" * depth


def sized(size: int) -> str:
    return json.dumps({"type": "message", "content": "x" * size})


frames: st.SearchStrategy[Frame] = st.one_of(
    st.tuples(st.just("binary"), st.binary(max_size=64)),
    st.tuples(st.just("raw"), st.binary(max_size=64)),
    st.tuples(st.just("raw"), st.tuples(st.binary(max_size=8), invalid_utf8).map(b"".join)),
    st.tuples(st.just("text"), st.text(max_size=64)),
    st.tuples(st.just("text"), json_values.map(json.dumps)),
    st.tuples(st.just("text"), message_shaped.map(json.dumps)),
    st.tuples(
        st.just("text"),
        st.builds(
            lambda c, a: json.dumps({"type": "message", "content": c}, ensure_ascii=a),
            weird_text,
            st.booleans(),
        ),
    ),
    st.tuples(
        st.just("text"), escaped_surrogates.map(lambda s: f'{{"type":"message","content":{s}}}')
    ),
    st.tuples(st.just("text"), st.integers(1, 20_000).map(deep)),
    st.tuples(st.just("text"), st.integers(1990, 2010).map(sized)),  # around the content limit
    st.tuples(st.just("text"), st.integers(MAX_BYTES - 40, MAX_BYTES + 40).map(sized)),
    st.tuples(st.just("raw"), st.integers(MAX_BYTES - 4, MAX_BYTES + 4).map(b"x".__mul__)),
)

# What the server must answer ----------------------------------------------------------------


def expected(kind: str, payload: str | bytes) -> str:
    """The answer a frame must get: ``close CODE``, ``error CODE``, ``pong``, ``post``, ``ack``."""
    data = payload.encode() if isinstance(payload, str) else payload
    if len(data) > MAX_BYTES:
        return "close 1009"
    if kind == "binary":
        return f"error {ErrorCode.BINARY_NOT_SUPPORTED}"
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "close 1007"
    frame = parse(text)
    if isinstance(frame, ErrorFrame):
        return f"error {frame.code}"
    if isinstance(frame, Ping):
        return "pong"
    return "post" if frame.client_msg_id is None else "ack"


class Fuzzer:
    """One chat connection that sends a frame, reads its answer, and reconnects after a close.

    Each connection has a name of its own: the server may not have seen the last one leave yet
    (and would answer "Username taken").
    """

    def __init__(self, server: RunningServer, room: str) -> None:
        self.server, self.room = server, room
        self.connections = 0
        self._connections = contextlib.ExitStack()
        self.websocket = self._connect()
        self.outcomes: collections.Counter[str] = collections.Counter()

    def _connect(self) -> ClientConnection:
        self.connections += 1
        self.name = f"fuzzer{self.connections}"
        websocket = self._connections.enter_context(
            connect(
                self.server.ws(f"/chat/{self.room}/{self.name}"),
                max_size=None,
                open_timeout=wait_timeout(),
            )
        )
        while True:  # the history, then our own join
            frame = json.loads(websocket.recv(timeout=wait_timeout()))
            if frame["type"] == "join" and frame["username"] == self.name:
                return websocket

    def close(self) -> None:
        self._connections.close()

    def check(self, kind: str, payload: str | bytes) -> None:
        want = expected(kind, payload)
        got = self._answer(kind, payload, want)
        assert got == want, f"{kind} frame {payload[:80]!r}…: expected {want}, got {got}"
        self.outcomes[got] += 1
        if got.startswith("close"):
            self.websocket = self._connect()

    def _answer(self, kind: str, payload: str | bytes, want: str) -> str:
        try:
            self.websocket.send(payload, text=kind != "binary")
            deadline = time.monotonic() + wait_timeout()
            while True:
                reply = json.loads(self.websocket.recv(timeout=deadline - time.monotonic()))
                outcome = self._outcome(reply, want)
                if outcome is not None:
                    return outcome
        except ConnectionClosed as closed:
            return f"close {closed.rcvd.code if closed.rcvd else None}"

    def _outcome(self, reply: dict[str, Any], want: str) -> str | None:
        kind = reply["type"]
        if kind == "error":
            assert len(reply["message"]) <= 200, reply
            assert "pydantic" not in reply["message"], reply
            return f"error {ErrorCode(reply['code'])}"
        if kind in {"pong", "ack"}:
            return kind
        if kind == "message" and reply["username"] == self.name and want == "post":
            return "post"
        return None  # someone else's event, or our post before its ack: not the answer yet


@pytest.fixture
def fuzz_server() -> Iterator[RunningServer]:
    """The chat with rate limiting off (the fuzzer sends as fast as answers come back)."""
    with start(name="fuzz", settings=Settings(rate_limit=0)) as server:
        yield server


def test_generated_frames_get_documented_answers_and_bystanders_lose_nothing(
    fuzz_server: RunningServer,
) -> None:
    fuzzer = Fuzzer(fuzz_server, "general")
    started = time.monotonic()
    with server_errors() as log, Bystanders(fuzz_server, "general", 3) as bystanders:

        @settings(
            max_examples=max(1, FRAMES // BATCH),
            deadline=None,
            database=None,
            derandomize=not os.environ.get("COURSE_FUZZ_RANDOM"),
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(frames, min_size=BATCH, max_size=BATCH))
        def fuzz(batch: list[Frame]) -> None:
            for kind, payload in batch:
                fuzzer.check(kind, payload)

        fuzz()
        fuzzer.close()
    elapsed = time.monotonic() - started
    sent = sum(fuzzer.outcomes.values())
    print(f"\n{sent} frames in {elapsed:.1f} s; answers:")
    for outcome, count in sorted(fuzzer.outcomes.items()):
        print(f"  {outcome:32} {count:6}")
    print(f"bystanders: {bystanders.summary()}")

    assert sent >= FRAMES
    bystanders.assert_everyone_got_everything()
    assert {str(e).splitlines()[0] for e in log} <= {UVICORN_UTF8_LOG}
    assert httpx.get(fuzz_server.url("/healthz"), timeout=wait_timeout()).json() == {"status": "ok"}
