"""What one check gets: a fresh app to plug the learner's code into, a real server, and guards.

A learner's code may raise, never return, or never give the event loop back. None of that may
hang ``check()`` or bury the verdict under a traceback, so:

- code mounted on the server (``websocket``, ``get``, ``task``) runs behind ``guard``, which
  records what it raises in ``Harness.errors`` (the verdict names it) instead of logging it;
- code the check calls directly (``call``) runs in a daemon thread of its own, so a check can
  stop waiting for it: a thread stuck in a loop cannot be killed, but it cannot hold us either;
- the servers' own log records stay out of the notebook (see ``_QuietCheckServers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from course_server.checks import references
from course_server.runner import RunningServer, start

THREAD_PREFIX = "course-server:check-"
"""Every check server's thread name starts so (``runner`` names threads ``course-server:NAME``)."""

_names = itertools.count()


class CheckFailed(Exception):
    """A check saw the wrong behaviour; the message is the hint the learner reads."""


class LearnerError(Exception):
    """The learner's code raised ``error`` when a check called it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


def expect(condition: object, hint: str) -> None:
    """Fail the check with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(hint)


def shown(value: object, limit: int = 80) -> str:
    """``value`` as a hint quotes it: its ``repr``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expect_equal(actual: object, expected: object, what: str) -> None:
    """Fail unless ``actual == expected``, saying what was expected and what came back.

    ``expect_equal(reply, "higher", "the reply to 3")`` fails with
    "the reply to 3: expected 'higher', got 'lower'".
    """
    if actual != expected:
        raise CheckFailed(f"{what}: expected {shown(expected)}, got {shown(actual)}")


def _close(code: int | None, reason: str | None) -> str:
    if code is None:
        return "no close (the connection is still open)"
    return f"close {code} {reason!r}" if reason is not None else f"close {code}"


def expect_close(
    closed: Any, code: int, reason: str | None = None, what: str = "the connection"
) -> None:
    """Fail unless ``closed`` ended with ``code`` (and ``reason``, when the prompt names one).

    ``closed`` is anything with ``close_code`` and ``close_reason``: a ``clients.Attempt`` or a
    ``websockets`` connection. The hint gives both closes: "the connection after 5 wrong
    guesses: expected close 4000 'Out of guesses', got close 1000 'Correct'".
    """
    got_code, got_reason = closed.close_code, closed.close_reason
    if got_code == code and (reason is None or got_reason == reason):
        return
    expected = _close(code, reason)
    got = _close(got_code, got_reason if reason is not None or got_code != code else None)
    if getattr(closed, "accepted", True) is False:  # an Attempt whose handshake was refused
        got = f"a refused handshake (HTTP {closed.http_status})"
    raise CheckFailed(f"{what}: expected {expected}, got {got}")


class _QuietCheckServers(logging.Filter):
    """Drop log records from check servers' threads: the verdict reports what went wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.threadName or not record.threadName.startswith(THREAD_PREFIX)


for _logger in ("uvicorn.error", "asyncio"):
    logging.getLogger(_logger).addFilter(_QuietCheckServers())


async def _close_quietly(websocket: WebSocket, code: int) -> None:
    """Close after the learner's code raised: 1011 if open; a refused handshake if not accepted."""
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):
        await websocket.close(code, "the exercise code raised an exception")


def recording(fn: Callable[..., Any], record: Callable[[Exception], None]) -> Callable[..., Any]:
    """``fn`` (a plain or coroutine function), handing what it raises to ``record``, then raising.

    The wrapper keeps ``fn``'s signature (``functools.wraps``), so FastAPI injects the same
    parameters into it, as a dependency or an endpoint.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                record(exc)
                raise

        return call

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            record(exc)
            raise

    return plain


class Harness:
    """One check's world: ``app`` (empty FastAPI), its server once started, what went wrong."""

    def __init__(self, label: str) -> None:
        self.app = FastAPI()
        self.errors: list[BaseException] = []
        self.server: RunningServer | None = None
        self._name = f"check-{label}-{next(_names)}"
        self._threads: list[threading.Thread] = []

    # --- plugging the learner's code in -------------------------------------------------------

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, recording what it raises. A WebSocket endpoint that raised is closed (1011).

        The wrapper keeps ``fn``'s signature (``functools.wraps``) so FastAPI injects the same
        parameters, and its kind (coroutine or async generator function).
        """
        record = self.errors.append

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def stream(*args: Any, **kwargs: Any) -> Any:
                try:
                    async for item in fn(*args, **kwargs):
                        yield item
                except Exception as exc:
                    record(exc)
                    raise

            return stream

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await fn(*args, **kwargs)
                except WebSocketDisconnect:
                    return None  # the client left: the end of a conversation, not an error
                except Exception as exc:
                    record(exc)
                    sockets = [a for a in (*args, *kwargs.values()) if isinstance(a, WebSocket)]
                    if not sockets:
                        raise
                    await _close_quietly(sockets[0], 1011)
                    return None

            return call

        return recording(fn, record)

    def websocket(self, path: str, endpoint: Callable[..., Any]) -> None:
        self.app.add_api_websocket_route(path, self.guard(endpoint))

    def get(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        self.app.add_api_route(path, self.guard(endpoint), methods=["GET"], **options)

    def task(self, fn: Callable[..., Any], *args: Any) -> asyncio.Task[Any]:
        """Run ``fn(*args)`` (a coroutine function) as a task; what it raises is recorded."""
        return asyncio.get_running_loop().create_task(self.guard(fn)(*args))

    # --- running it ---------------------------------------------------------------------------

    async def serve(self) -> RunningServer:
        """Serve ``app`` on a free port, in a thread of its own, as the lessons do."""
        # A short graceful shutdown: a request the learner's code never answers is cut at once.
        self.server = await asyncio.to_thread(
            start, self.app, name=self._name, timeout_graceful_shutdown=1
        )
        with contextlib.suppress(TimeoutError):  # a stuck loop: the check itself will say so
            await self.on_server(references.track_origins)
        return self.server

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call the learner's ``fn(*args)`` in a daemon thread (its own event loop if async).

        Raises ``LearnerError`` if it raised. The caller's deadline still holds while ``fn``
        loops forever: only that thread is stuck, and it dies with the process.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, Any]] = loop.create_future()

        def settle(outcome: tuple[bool, Any]) -> None:
            if not future.done():
                future.set_result(outcome)

        def target() -> None:
            references.track_origins()
            try:
                result = fn(*args)
                if inspect.iscoroutine(result):
                    result = asyncio.run(result)
                outcome: tuple[bool, Any] = (True, result)
            except BaseException as exc:
                outcome = (False, exc)
            with contextlib.suppress(RuntimeError):  # the check gave up and its loop is gone
                loop.call_soon_threadsafe(settle, outcome)

        # The thread runs in a copy of this context: what the learner's code calls is charged
        # to this run of checks (see ``references.current``).
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(target,), name=f"{self._name}-learner", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        ok, value = await future
        if not ok:
            self.errors.append(value)
            raise LearnerError(value)
        return value

    async def on_server(self, fn: Callable[..., Any], *args: Any, timeout: float = 2) -> Any:
        """Run ``fn(*args)`` on the server's event loop (its objects belong there); its result."""
        assert self.server is not None, "serve() first"

        server = self.server

        async def job() -> Any:
            return fn(*args)

        # The coroutine is made in the worker thread: never left unawaited if this is cancelled.
        return await asyncio.to_thread(lambda: server.call(job(), timeout))

    async def busy(self, threads: bool = True) -> str | None:
        """Is the learner's code still busy, and how? None if it is not.

        ``threads=False`` asks only about the server's event loop: a thread of ``call`` still
        waiting on a server that is about to stop ends with it.
        """
        if self.server is not None and self.server.running:
            try:
                await self.on_server(lambda: None, timeout=0.5)
            except TimeoutError:
                return (
                    "your code never gave the event loop back (a loop with no await in it, "
                    "or a blocking call such as time.sleep?)"
                )
        if threads and any(thread.is_alive() for thread in self._threads):
            return "your code is still running: waiting for something that never comes, or looping?"
        return None

    def close(self) -> threading.Thread | None:
        """Stop the server in the background; join the returned thread to wait for it."""
        server = self.server
        if server is None:
            return None
        stopper = threading.Thread(target=server.stop, kwargs={"timeout": 3}, daemon=True)
        stopper.start()
        return stopper
