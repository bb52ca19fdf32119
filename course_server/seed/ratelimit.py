"""The seed chapter's rate limiter, for lesson 09 to break — do not copy.

``SeedRateLimiter`` keeps, per user ever seen, a list of timestamps on the wall clock: memory grows
with every user for the life of the server, and a clock set back locks users out.
``course_server.realtime.ratelimit`` (token buckets on a monotonic clock) is what the server uses.
"""
# The chapter's untyped signatures, kept as written (the lessons show them):
# mypy: disable-error-code="no-untyped-def, type-arg"

from __future__ import annotations

import time
from collections import defaultdict


class SeedRateLimiter:
    """THE NAIVE VERSION, as the source chapter wrote it: for lesson 09 to break, never to use.

    Every user ever seen keeps a key in ``message_counts``, and a list of up to
    ``max_messages`` timestamps, for the life of the server. ``time.time()`` is wall-clock
    time: when the system clock is set back, old timestamps look recent and a user is locked
    out. (Type hints modernised; otherwise as written.)
    """

    def __init__(self, max_messages: int, window_seconds: int):
        self.max_messages = max_messages
        self.window = window_seconds
        self.message_counts: dict[str, list] = defaultdict(list)

    def is_allowed(self, user_id: str) -> bool:
        now = time.time()
        # Remove old timestamps
        self.message_counts[user_id] = [
            t for t in self.message_counts[user_id] if now - t < self.window
        ]

        if len(self.message_counts[user_id]) >= self.max_messages:
            return False

        self.message_counts[user_id].append(now)
        return True
