"""The token bucket and the flood rule (``realtime.ratelimit``), on a clock the test moves."""

from __future__ import annotations

import sys

import pytest

from course_server.realtime.ratelimit import FloodGuard, TokenBucket, Verdict


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_starts_full_and_allows_a_burst() -> None:
    bucket = TokenBucket(rate=5, burst=10, clock=FakeClock())
    assert [bucket.allow() for _ in range(11)] == [True] * 10 + [False]


def test_burst_defaults_to_twice_the_rate() -> None:
    assert TokenBucket(rate=20).burst == 40


def test_tokens_come_back_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock)
    assert bucket.allow() and bucket.allow() and not bucket.allow()
    clock.advance(0.49)
    assert not bucket.allow()
    clock.advance(0.01)  # 0.5 s at 2 per second: one token
    assert bucket.allow()
    assert not bucket.allow()


def test_refill_never_exceeds_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    clock.advance(3600)
    assert bucket.tokens == 3


def test_sustained_rate_is_the_rate() -> None:
    """Over 10 s at 100 attempts per second, a 5/s bucket lets 5/s through, plus its burst."""
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=10, clock=clock)
    allowed = 0
    for _ in range(1000):
        allowed += bucket.allow()
        clock.advance(0.01)
    assert 10 + 5 * 10 - 1 <= allowed <= 10 + 5 * 10


def test_rate_zero_turns_the_limit_off() -> None:
    bucket = TokenBucket(rate=0, clock=FakeClock())
    assert all(bucket.allow() for _ in range(10_000))


def test_a_slow_rate_still_allows_one_event() -> None:
    bucket = TokenBucket(rate=0.1, clock=FakeClock())
    assert bucket.burst == 1
    assert bucket.allow() and not bucket.allow()


def test_a_burst_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0.5)


def test_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=-1)


def test_memory_per_bucket_is_constant() -> None:
    """Two floats and a clock, whatever the traffic: the seed kept a timestamp per message."""
    clock = FakeClock()
    bucket = TokenBucket(rate=5, clock=clock)
    size = sys.getsizeof(bucket)
    for _ in range(10_000):
        bucket.allow()
        clock.advance(0.001)
    assert sys.getsizeof(bucket) == size
    assert not hasattr(bucket, "__dict__")


def test_guard_allows_then_drops_then_closes() -> None:
    guard = FloodGuard(rate=1, burst=2, strikes=3, clock=FakeClock())
    verdicts = [guard.check() for _ in range(6)]
    assert verdicts == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.DROP,
        Verdict.DROP,
        Verdict.CLOSE,
        Verdict.CLOSE,
    ]


def test_guard_strikes_default_to_the_burst_at_least_three() -> None:
    assert FloodGuard(rate=20).strikes == 40
    assert FloodGuard(rate=1).strikes == 3


def test_a_frame_that_passes_resets_the_strikes() -> None:
    clock = FakeClock()
    guard = FloodGuard(rate=1, burst=1, strikes=2, clock=clock)
    assert guard.check() is Verdict.ALLOW
    assert guard.check() is Verdict.DROP
    clock.advance(1)
    assert guard.check() is Verdict.ALLOW
    assert guard.check() is Verdict.DROP  # one strike again, not two


def test_guard_with_rate_zero_never_drops() -> None:
    guard = FloodGuard(rate=0, clock=FakeClock())
    assert all(guard.check() is Verdict.ALLOW for _ in range(1000))
