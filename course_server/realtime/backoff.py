"""Retry pacing: capped exponential backoff with full jitter, for clients and for Redis links.

Retry n waits a random time in ``[0, min(cap, base · 2ⁿ)]`` ("full jitter"). The exponential
part keeps a peer that is down from being hammered; the jitter, drawn over the whole interval,
keeps the many clients (or server processes) it just dropped from coming back in the same
millisecond, again and again. Of the usual jitters, full jitter spreads retries the most for
the least total wait.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable


@dataclasses.dataclass
class Backoff:
    """Capped exponential backoff, full jitter: retry n waits ``uniform(0, min(cap, base·2ⁿ))``.

    ``delay(n)`` suits a caller that counts its own retries; ``next_delay()`` counts them here
    (``failures``) until ``reset()``, after a success.
    """

    base: float = 0.05
    cap: float = 2.0
    failures: int = 0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry ``attempt`` (0 for the first retry)."""
        # 2**32 is far past any cap already; the bound keeps a huge count from overflowing.
        return rng() * min(self.cap, self.base * 2.0 ** min(attempt, 32))

    def next_delay(self, rng: Callable[[], float] = random.random) -> float:
        """The delay before the next retry; counts one more failure."""
        delay = self.delay(self.failures, rng)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """A success: the next retry starts from ``base`` again."""
        self.failures = 0
