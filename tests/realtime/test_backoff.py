"""``course_server.realtime.backoff``: capped exponential backoff with full jitter."""

from __future__ import annotations

import pytest

from course_server.realtime.backoff import Backoff


def test_the_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    assert [backoff.delay(n, rng=lambda: 1.0) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    assert backoff.delay(3, rng=lambda: 0.0) == 0.0
    assert backoff.delay(3, rng=lambda: 0.5) == pytest.approx(0.4)


def test_a_huge_retry_count_does_not_overflow() -> None:
    assert Backoff(base=0.1, cap=1.0).delay(10_000, rng=lambda: 1.0) == 1.0


def test_the_default_jitter_stays_within_the_ceiling() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    assert all(0 <= backoff.delay(2) <= 0.4 for _ in range(1000))


def test_next_delay_counts_failures() -> None:
    backoff = Backoff(base=0.1, cap=1.0)
    assert [backoff.next_delay(rng=lambda: 1.0) for _ in range(3)] == [0.1, 0.2, 0.4]
    assert backoff.failures == 3


def test_reset_starts_again_from_base() -> None:
    backoff = Backoff(base=0.1, cap=1.0, failures=5)
    backoff.reset()
    assert backoff.next_delay(rng=lambda: 1.0) == 0.1
