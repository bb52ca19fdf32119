"""Percentiles: the one definition behind every p50, p95 and p99 the course prints.

The method is **nearest rank**: the ``p``-th percentile of ``n`` sorted values is the value at
rank ``ceil(p / 100 * n)`` (counting from 1; rank 0, for ``p = 0``, means the smallest). No
interpolation, so every figure is a latency that was actually measured: "p99 = 12.8 ms" means
one delivery in a hundred took 12.8 ms or more, and some delivery took exactly that. With few
values the high percentiles are simply the largest value (p99 of 30 values is the maximum),
which is the honest answer; an interpolated figure would be one nobody observed. The median is
``percentile(values, 50)``: with an even count it is the lower of the middle two.

Lessons 01 (``lab.compare``), 03 (``lab.latency``), 07 (``clients.scaling``) and 10
(``benchmarks.stats``) all use this function, so their percentiles can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 ≤ ``p`` ≤ 100) of sorted values; nan if empty.

    The values must already be in ascending order: callers that want several percentiles sort
    once (``percentiles`` does). Raises ``ValueError`` for a ``p`` outside 0..100.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {p}")
    if not sorted_values:
        return math.nan
    rank = math.ceil(p / 100 * len(sorted_values))
    return float(sorted_values[max(rank, 1) - 1])


def percentiles(values: Iterable[float], ps: Iterable[float]) -> dict[float, float]:
    """``{p: percentile(sorted(values), p)}`` for each ``p`` in ``ps``: one sort for them all."""
    ordered = sorted(values)
    return {p: percentile(ordered, p) for p in ps}
