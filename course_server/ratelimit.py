"""Rate limiting per connection: a token bucket, and the rule for when to hang up on a flood.

The seed's limiter kept a list of timestamps per user, in a dict that never forgot a user: memory
grew with traffic and with every user ever seen. A token bucket needs two numbers per connection
whatever the traffic, and lives and dies with the connection.

The clock is ``time.monotonic`` (wall-clock time can jump back and forth); tests pass their own.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Allow ``rate`` events per second on average, and bursts of up to ``burst`` at once.

    The bucket holds up to ``burst`` tokens (default: twice the rate, at least 1) and starts
    full; each event takes one, and tokens flow back in at ``rate`` per second. Refilling is
    computed on demand from the time elapsed, so there is no timer and nothing to clean up.
    ``rate == 0`` turns the limit off.
    """

    __slots__ = ("_clock", "_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic):
        if rate < 0:
            raise ValueError("rate must be >= 0 (0 turns the limit off)")
        self.rate = rate
        # At least one token, or a slow rate (0.1/s) would never let anything through.
        self.burst = max(1.0, 2 * rate) if burst is None else burst
        if rate and self.burst < 1:
            raise ValueError("burst must be >= 1, or no event could ever pass")
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()

    @property
    def tokens(self) -> float:
        """Tokens available now (fractional while refilling)."""
        self._refill()
        return self._tokens

    def allow(self, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are enough; say whether the event may go ahead."""
        if not self.rate:
            return True
        self._refill()
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class Verdict(enum.Enum):
    ALLOW = "allow"  # handle the frame
    DROP = "drop"  # drop it and tell the client (error ``rate_limited``)
    CLOSE = "close"  # the client ignored the errors: close with 1008


class FloodGuard:
    """A token bucket plus the rule for a client that ignores ``rate_limited`` errors.

    The rule: when ``strikes`` frames in a row have been dropped, close the connection (1008,
    "Rate limit exceeded"). By default ``strikes`` is the burst size (at least 3): a client has
    then ignored as many errors as it was allowed frames at once. Any frame that passes resets
    the count, so a client that slows down when told to is never cut off.
    """

    __slots__ = ("_dropped", "bucket", "strikes")

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        strikes: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.bucket = TokenBucket(rate, burst, clock=clock)
        self.strikes = strikes if strikes is not None else max(3, math.ceil(self.bucket.burst))
        self._dropped = 0

    def check(self) -> Verdict:
        """Account for one incoming frame and say what to do with it."""
        if self.bucket.allow():
            self._dropped = 0
            return Verdict.ALLOW
        self._dropped += 1
        return Verdict.CLOSE if self._dropped >= self.strikes else Verdict.DROP
