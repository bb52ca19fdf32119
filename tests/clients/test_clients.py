"""The notebook clients (``clients.websocket``) against a real server, and ``run_sync``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from conftest import wait_timeout

from course_server import RunningServer, Settings, start
from course_server.clients.websocket import Attempt, attempt, run_sync, talk

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One real server for this module (overrides conftest's per-test one, to save start-ups).

    Safe because lesson 02's endpoints keep no state from one connection to the next.
    """
    with start(name=f"test-{__name__}", settings=Settings()) as running:
        yield running


# talk


async def test_talk_returns_one_reply_per_message_text_and_bytes(server: RunningServer) -> None:
    replies = await talk(server.ws("/ws/echo"), "hi", b"\x01", timeout=wait_timeout())
    assert replies == ["You said: hi", b"\x01"]


async def test_talk_sends_dicts_as_json_and_parses_replies_with_as_json(
    server: RunningServer,
) -> None:
    replies = await talk(
        server.ws("/ws/json"), {"type": "say", "text": "hey"}, as_json=True, timeout=wait_timeout()
    )
    assert replies == [{"type": "said", "text": "hey", "length": 3}]


async def test_talk_with_no_messages_just_connects(server: RunningServer) -> None:
    assert await talk(server.ws("/ws/echo"), timeout=wait_timeout()) == []


# attempt


async def test_attempt_reports_a_refused_handshake(server: RunningServer) -> None:
    seen = await attempt(server.ws("/ws/deny"), timeout=wait_timeout())
    assert seen == Attempt(accepted=False, http_status=401, body='{"detail":"Token required"}')


async def test_attempt_reports_close_code_and_reason(server: RunningServer) -> None:
    seen = await attempt(server.ws("/ws/close-after-accept"), timeout=wait_timeout())
    assert seen == Attempt(True, 101, close_code=4001, close_reason="Token required")


async def test_attempt_collects_what_arrives_before_the_close(server: RunningServer) -> None:
    seen = await attempt(server.ws("/ws/greet?name=Ada&times=2"), timeout=wait_timeout())
    assert (seen.received, seen.close_code) == (["Hello, Ada!"] * 2, 1000)


async def test_attempt_sends_messages_first(server: RunningServer) -> None:
    seen = await attempt(server.ws("/ws/closer"), "nonsense", "close 4321 Bye")
    assert (len(seen.received), seen.close_code, seen.close_reason) == (1, 4321, "Bye")


async def test_attempt_survives_a_close_that_comes_while_sending(server: RunningServer) -> None:
    seen = await attempt(server.ws("/ws/close-after-accept"), "late", "later", "latest")
    assert (seen.accepted, seen.close_code) == (True, 4001)


async def test_attempt_times_out_on_an_endpoint_that_stays_open(server: RunningServer) -> None:
    with pytest.raises(TimeoutError, match="use talk"):
        await attempt(server.ws("/ws/echo"), "hi", timeout=0.2)


def test_attempt_str_of_a_refusal_says_there_is_no_close_code() -> None:
    assert str(Attempt(False, 403)) == "refused: HTTP 403, body '', no close code"


def test_attempt_str_of_a_close() -> None:
    seen = Attempt(True, 101, close_code=4001, close_reason="Token required", received=["hi"])
    assert str(seen) == "accepted (HTTP 101), received ['hi'], closed 4001 'Token required'"


# run_sync


async def answer_with_thread() -> tuple[int, str]:
    await asyncio.sleep(0)
    return 42, threading.current_thread().name


async def fail() -> None:
    raise ValueError("boom")


def test_run_sync_without_a_running_loop_runs_in_this_thread() -> None:
    assert run_sync(answer_with_thread()) == (42, threading.current_thread().name)


async def test_run_sync_inside_a_running_loop_uses_a_worker_thread() -> None:
    """As in Jupyter: a sync call from inside a running loop must not re-enter that loop."""
    value, thread_name = run_sync(answer_with_thread())
    assert value == 42
    assert thread_name.startswith("run_sync")


async def test_run_sync_inside_a_running_loop_can_talk_to_the_server(
    server: RunningServer,
) -> None:
    replies = run_sync(talk(server.ws("/ws/echo"), "sync"), timeout=wait_timeout())
    assert replies == ["You said: sync"]


@pytest.mark.parametrize("in_loop", [False, True])
async def test_run_sync_raises_what_the_coroutine_raises(in_loop: bool) -> None:
    with pytest.raises(ValueError, match="boom"):
        if in_loop:
            run_sync(fail())
        else:
            await asyncio.to_thread(run_sync, fail())


def test_run_sync_timeout() -> None:
    with pytest.raises(TimeoutError):
        run_sync(asyncio.Event().wait(), timeout=0.05)
