"""Lesson 06, login throttling: few password hashes at once, few guesses per name and address.

Two limits guard ``POST /token`` and ``POST /session``:

- **Concurrency.** argon2 is memory-hard on purpose: each hash holds ~64 MiB while it runs. With
  no cap, 40 logins at once hold 40 of them (2.6 GB measured). ``LoginThrottle`` lets
  ``settings.login_concurrency`` hashes run at once, each in a worker thread so the event loop
  keeps serving WebSockets; the others wait on a semaphore, which holds no memory of theirs.
- **Failures.** More than ``settings.login_max_failures`` failed logins for one username or one
  client address within ``settings.login_window`` seconds → 429 with ``Retry-After``, the right
  password included, until the window has passed (a sliding window: each failure counts for
  ``login_window`` seconds).

An attempt is counted as a failure *before* its hash runs and taken back if it succeeds, so
concurrent guesses see each other: a burst of 40 cannot all slip under the limit while the first
few are still hashing. With Redis (``scaling.throttle``) every process shares the counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio.to_thread

from course_server.security.identity import client_key


class TooManyFailures(Exception):
    """Refused without a hash: a key has had too many failures; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Failures(Protocol):
    """Failed logins per key, counted over a sliding window."""

    async def begin(self, keys: Sequence[str], attempt: str) -> float:
        """Count ``attempt`` under every key, unless one is full: then the seconds until it is not.

        Returns 0 when the attempt was counted (it may go ahead).
        """
        ...

    async def forgive(self, keys: Sequence[str], attempt: str) -> None:
        """The attempt succeeded: it no longer counts as a failure."""
        ...


class InProcessFailures:
    """The default: counts in this process's memory, one ``{attempt: time}`` per key."""

    def __init__(self, max_failures: int, window: float) -> None:
        self.max_failures = max_failures
        self.window = window
        self._keys: dict[str, dict[str, float]] = {}
        self._sweep_at = 1024  # sweep keys nobody touches any more when there are this many

    def _recent(self, key: str, now: float) -> dict[str, float]:
        entries = self._keys.get(key, {})
        for attempt, at in list(entries.items()):
            if at <= now - self.window:
                del entries[attempt]
        if not entries:
            self._keys.pop(key, None)
        return entries

    async def begin(self, keys: Sequence[str], attempt: str) -> float:
        now = time.monotonic()
        if len(self._keys) >= self._sweep_at:
            for key in list(self._keys):
                self._recent(key, now)
            self._sweep_at = max(1024, 2 * len(self._keys))
        wait = 0.0
        for key in keys:
            times = sorted(self._recent(key, now).values())
            if len(times) >= self.max_failures:
                # Under the limit again once all but max_failures - 1 of them have aged out.
                wait = max(wait, times[len(times) - self.max_failures] + self.window - now)
        if wait:
            return wait
        for key in keys:
            self._keys.setdefault(key, {})[attempt] = now
        return 0.0

    async def forgive(self, keys: Sequence[str], attempt: str) -> None:
        for key in keys:
            entries = self._keys.get(key)
            if entries is not None:
                entries.pop(attempt, None)
                if not entries:
                    del self._keys[key]


def login_keys(username: str, address: str) -> list[str]:
    """The keys one login counts under: its username (hashed: any length, any bytes) and address
    (an IPv6 one by its /64 network, ``identity.client_key``)."""
    digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return [f"user:{digest}", f"addr:{client_key(address)}"]


class LoginThrottle:
    """``app.state.login_throttle``: runs password checks under both limits."""

    def __init__(self, failures: Failures, concurrency: int) -> None:
        self.failures = failures
        self.concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self.hashing = 0  # checks running now (in worker threads)
        self.waiting = 0  # checks waiting for a slot

    async def check(self, username: str, address: str, verify: Callable[[], bool]) -> bool:
        """``verify()`` in a worker thread, under both limits; ``TooManyFailures`` if refused."""
        keys = login_keys(username, address)
        attempt = secrets.token_hex(8)
        wait = await self.failures.begin(keys, attempt)
        if wait:
            raise TooManyFailures(max(1, math.ceil(wait)))
        slots = self._semaphore()
        self.waiting += 1
        try:
            await slots.acquire()
        finally:
            self.waiting -= 1
        self.hashing += 1
        try:
            ok = await anyio.to_thread.run_sync(verify)
        finally:
            self.hashing -= 1
            slots.release()
        if ok:
            await self.failures.forgive(keys, attempt)
        return ok

    def _semaphore(self) -> asyncio.Semaphore:
        """This loop's semaphore: an asyncio one belongs to the first loop that waits on it.

        A server restarted with the same app (``course_server.start(server.app, …)``) runs on a
        new loop; checks still under way on the old one are gone with it.
        """
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._slots = loop, asyncio.Semaphore(self.concurrency)
        return self._slots
