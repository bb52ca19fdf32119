"""Numbers from raw latencies: percentiles, one row per run, and the tables the CLIs print."""

from __future__ import annotations

import dataclasses
import math
from array import array
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of an already sorted sequence (nan if empty)."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(p / 100 * len(sorted_values))
    return float(sorted_values[max(rank, 1) - 1])


@dataclasses.dataclass
class Latencies:
    """Delivery latencies in nanoseconds, kept whole so they can be plotted, not just summarised."""

    values: array = dataclasses.field(default_factory=lambda: array("q"))

    def extend(self, more: Sequence[int]) -> None:
        self.values.extend(more)

    def summary_ms(self) -> tuple[float, float, float]:
        """p50, p99 and max, in milliseconds."""
        ordered = sorted(self.values)
        if not ordered:
            return math.nan, math.nan, math.nan
        return percentile(ordered, 50) / 1e6, percentile(ordered, 99) / 1e6, ordered[-1] / 1e6


@dataclasses.dataclass
class SlowReport:
    """What became of the receivers that stopped reading."""

    count: int = 0
    received: int = 0  # messages they got before (and after) they stopped
    close_codes: list[int | None] = dataclasses.field(default_factory=list)

    @property
    def fate(self) -> str:
        """``cut off 4008``, ``closed 1006`` (no close frame), or ``still open``."""
        if not self.count:
            return "-"
        codes = sorted({c for c in self.close_codes if c is not None})
        still_open = sum(c is None for c in self.close_codes)
        parts = [f"closed {c}" if c != 4008 else "cut off 4008" for c in codes]
        if still_open:
            parts.append("still open")
        return ", ".join(parts)


@dataclasses.dataclass
class Run:
    """One design, one scenario: what the fast receivers got, and what it cost the server."""

    design: str
    scenario: str
    receivers: int
    messages: int
    sent: int = 0
    delivered: int = 0  # to the receivers that kept reading, benchmark messages only
    lost: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    seconds: float = math.nan  # first send to last delivery
    latencies: Latencies = dataclasses.field(default_factory=Latencies)
    slow: SlowReport = dataclasses.field(default_factory=SlowReport)
    server_cpu: float = math.nan  # share of one core, over ``seconds``
    generator_cpu: float = math.nan  # the receivers' processes, summed, same window
    peak_rss_mb: float = math.nan
    idle_rss_mb: float = math.nan  # after start-up, before any client connected
    note: str = ""

    @property
    def rate(self) -> float:
        """Deliveries per second (to the receivers that kept reading)."""
        if not self.delivered or not self.seconds > 0:
            return 0.0
        return self.delivered / self.seconds

    @property
    def expected(self) -> int:
        return (self.receivers - self.slow.count) * self.messages


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.0f}%"


def table(runs: list[Run], reference: str | None = None) -> str:
    """A fixed-width table; ``reference`` names the design the ``ratio`` column divides by."""
    ref = {r.scenario: r.rate for r in runs if r.design == reference}
    header = (
        f"{'design':<22}{'scenario':<18}{'deliveries/s':>13}{'ratio':>7}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>9}{'got':>9}{'lost':>7}{'order':>6}{'server':>7}"
        f"{'gen':>6}{'RSS MB':>8}  slow receivers"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        p50, p99, worst = r.latencies.summary_ms()
        base = ref.get(r.scenario, 0.0)
        ratio = f"{r.rate / base:.2f}" if base else "-"
        lines.append(
            f"{r.design:<22}{r.scenario:<18}{r.rate:>13,.0f}{ratio:>7}{_ms(p50):>8}{_ms(p99):>8}"
            f"{_ms(worst):>9}{r.delivered:>9}{r.lost:>7}{r.out_of_order:>6}"
            f"{_pct(r.server_cpu):>7}{_pct(r.generator_cpu):>6}{_ms(r.peak_rss_mb):>8}"
            f"  {r.slow.fate}{'  ' + r.note if r.note else ''}"
        )
    return "\n".join(lines)
