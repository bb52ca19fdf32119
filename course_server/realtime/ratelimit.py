"""Rate limiting per connection and per user: token buckets, and when to hang up on a flood.

The seed's limiter (``seed.ratelimit.SeedRateLimiter``, kept for lesson 09 to break) kept a list
of timestamps per user, in a dict that never forgot a user: memory grew with traffic and with
every user ever seen. A token bucket needs two numbers whatever the traffic. A connection's
bucket lives and dies with the connection; a user's bucket (``UserBuckets``) is shared by the
user's connections and freed with the last of them, so memory follows the users online now.

The clock is ``time.monotonic`` (wall-clock time can jump back and forth); tests pass their own.
"""

from __future__ import annotations

import contextlib
import enum
import math
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.messages import ErrorCode, ErrorFrame, error

if TYPE_CHECKING:
    from course_server.realtime.fanout import Peer

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

    def can(self, cost: float = 1.0) -> bool:
        """Whether ``allow(cost)`` would pass now, without taking anything."""
        return not self.rate or self.tokens >= cost

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


class Verdict(enum.Enum):
    ALLOW = "allow"  # handle the frame
    DROP = "drop"  # drop it and tell the client (error ``rate_limited``)
    CLOSE = "close"  # the client ignored the errors: close with 1008


class FloodGuard:
    """A connection's token bucket (and its user's, if given), and the rule for a flood.

    A frame passes when the connection's bucket *and* the user's shared bucket each have a
    token; it then takes one from both. The rule for a client that ignores ``rate_limited``
    errors: when ``strikes`` frames in a row have been dropped, close the connection (1008,
    "Rate limit exceeded"). By default ``strikes`` is the burst size (at least 3): a client has
    then ignored as many errors as it was allowed frames at once. Any frame that passes resets
    the count, so a client that slows down when told to is never cut off.
    """

    __slots__ = ("_dropped", "bucket", "strikes", "user")

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        strikes: int | None = None,
        user: TokenBucket | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.bucket = TokenBucket(rate, burst, clock=clock)
        self.user = user
        self.strikes = strikes if strikes is not None else max(3, math.ceil(self.bucket.burst))
        self._dropped = 0

    def check(self) -> Verdict:
        """Account for one incoming frame and say what to do with it."""
        user = self.user
        if self.bucket.can() and (user is None or user.can()):
            self.bucket.allow()
            if user is not None:
                user.allow()
            self._dropped = 0
            return Verdict.ALLOW
        self._dropped += 1
        return Verdict.CLOSE if self._dropped >= self.strikes else Verdict.DROP

    def admit(self, peer: Peer, reply: Callable[[ErrorFrame], object] | None = None) -> bool:
        """``check()``, acted on: True if the frame may be handled.

        Otherwise the client is told with ``reply(rate_limited error)``, or, once the flood goes
        on or where the protocol has no error frames (no ``reply``), closed with 1008.
        """
        verdict = self.check()
        if verdict is Verdict.ALLOW:
            return True
        if verdict is Verdict.DROP and reply is not None:
            reply(error(ErrorCode.RATE_LIMITED, "too many messages: slow down"))
        else:
            peer.close(CloseCode.RATE_LIMIT_EXCEEDED, "Rate limit exceeded")
        return False


class UserBuckets:
    """One token bucket per budget, shared by all of its connections, freed once unused and full.

    A budget is a user's, or a guest address's (``identity.Identity.budget`` says which).

    ``acquire(user)`` when a connection opens and ``release(user)`` when it ends (in a
    ``finally``). After the last connection a bucket is kept until it has refilled: forgetting
    it sooner would hand a client that hangs up and reconnects a full bucket each time (a
    reconnect loop got 11,000 messages through ``/ws/broadcast`` in 3 s that way). A full
    bucket is what a newcomer gets anyway, so forgetting it then loses nothing, and memory
    follows the users online now and those who spent tokens in the last ``burst / rate``
    seconds, however many come and go.
    """

    def __init__(
        self, rate: float, burst: float | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[TokenBucket, int]] = {}  # user -> (bucket, connections)
        self._idle: dict[str, None] = {}  # users with no connection, in the order they left

    def __len__(self) -> int:
        self._forget_refilled()
        return len(self._buckets)

    def __contains__(self, user: object) -> bool:
        self._forget_refilled()
        return user in self._buckets

    def acquire(self, user: str) -> TokenBucket:
        """The user's bucket (a full one if none is kept); count one more connection."""
        self._forget_refilled()
        held = self._buckets.get(user)
        if held is None:
            held = (TokenBucket(self.rate, self.burst, clock=self._clock), 0)
        bucket, connections = held
        self._buckets[user] = (bucket, connections + 1)
        self._idle.pop(user, None)
        return bucket

    def release(self, user: str) -> None:
        """Count one connection fewer; with the last, keep the bucket until it has refilled."""
        held = self._buckets.get(user)
        if held is None or held[1] == 0:
            return
        bucket, connections = held
        self._buckets[user] = (bucket, connections - 1)
        if connections == 1:
            self._idle[user] = None
        self._forget_refilled()

    def _forget_refilled(self) -> None:
        # Every bucket refills at one rate to one burst, so the earliest to leave are (nearly)
        # the first to be full: look from the front and stop at the first still refilling.
        while self._idle:
            user = next(iter(self._idle))
            bucket, _ = self._buckets[user]
            if bucket.rate and bucket.tokens < bucket.burst:
                return
            del self._idle[user]
            del self._buckets[user]


@contextlib.contextmanager
def flood_guard(buckets: UserBuckets, budget: str, rate: float) -> Iterator[FloodGuard]:
    """A connection's ``FloodGuard``, sharing ``budget``'s bucket while the connection lasts.

    Every channel (chat, lobby, broadcast, private messages) takes one per connection, with the
    budget key of ``identity.Identity.budget``: a user's connections share one budget.
    """
    bucket = buckets.acquire(budget)
    try:
        yield FloodGuard(rate, user=bucket)
    finally:
        buckets.release(budget)
