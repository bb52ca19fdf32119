"""Numbers from raw latencies: one row per run, and the table the CLIs print.

Percentiles are ``course_server.lab.stats.percentile`` (nearest rank), as in the lessons.
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from typing import Any

from benchmarks.machine import QUIET
from course_server.lab.stats import percentile
from course_server.realtime.closecodes import CloseCode

SERVER_BOUND = 0.85  # a server busier than this was the bottleneck of its run


@dataclasses.dataclass
class SlowReport:
    """What became of the receivers that stopped reading (as they saw it, reading again)."""

    count: int = 0
    received: int = 0  # messages they got, before they stopped and once they read again
    close_codes: list[int | None] = dataclasses.field(default_factory=list)  # None: still open

    @property
    def cut_off(self) -> bool:
        """Every slow receiver's connection was ended by the server."""
        return bool(self.close_codes) and None not in self.close_codes

    @property
    def fate(self) -> str:
        """``cut off (4008)``, ``cut off (1006: no close frame)``, ``still open``, or ``-``."""
        if not self.count:
            return "-"
        parts = []
        for code in sorted({c for c in self.close_codes if c is not None}):
            seen = "4008 slow consumer" if code == CloseCode.SLOW_CONSUMER else f"{code}"
            if code == CloseCode.ABNORMAL_CLOSURE:
                seen = "1006: buffers full, no room for a close frame"
            parts.append(f"cut off ({seen})")
        if None in self.close_codes:
            parts.append("still open")
        return ", ".join(parts)


@dataclasses.dataclass
class Run:
    """One design, one scenario: what the receivers that kept reading got, and the server's cost."""

    design: str
    scenario: str
    receivers: int
    messages: int
    sent: int = 0
    delivered: int = 0  # benchmark messages, to receivers that kept reading
    lost: int = 0
    out_of_order: int = 0
    duplicates: int = 0
    wire_bytes: int = 0  # payload bytes of the delivered messages, as sent (compressed or not)
    seconds: float = math.nan  # first send to last delivery
    latencies_ns: array[int] = dataclasses.field(default_factory=lambda: array("q"))
    slow: SlowReport = dataclasses.field(default_factory=SlowReport)
    server_cpu: float = math.nan  # share of one core, over ``seconds``
    server_cpu_seconds: float = math.nan
    generator_cpu: float = math.nan  # the receivers' processes and the sender's, same window
    other_cpu: float = math.nan  # other programs on the machine meanwhile, same units
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
    def server_bound(self) -> bool:
        """The server used (nearly) a whole core: it, not the generator, set the pace."""
        return self.server_cpu >= SERVER_BOUND

    @property
    def us_per_delivery(self) -> float:
        """Server CPU time per delivery, in µs: steadier than the rate on a busy machine."""
        return 1e6 * self.server_cpu_seconds / self.delivered if self.delivered else math.nan

    @property
    def bytes_per_delivery(self) -> float:
        return self.wire_bytes / self.delivered if self.delivered else math.nan

    @property
    def expected(self) -> int:
        return (self.receivers - self.slow.count) * self.messages

    def latency_ms(self) -> tuple[float, float, float]:
        """p50, p99 and max delivery latency, in milliseconds."""
        ordered = sorted(self.latencies_ns)
        if not ordered:
            return math.nan, math.nan, math.nan
        return percentile(ordered, 50) / 1e6, percentile(ordered, 99) / 1e6, ordered[-1] / 1e6

    def summary(self) -> dict[str, Any]:
        """Everything but the raw latencies, JSON-ready."""
        p50, p99, worst = self.latency_ms()
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in {"latencies_ns", "slow"}
        }
        return {
            **fields,
            "deliveries_per_s": self.rate,
            "us_per_delivery": self.us_per_delivery,
            "bytes_per_delivery": self.bytes_per_delivery,
            "p50_ms": p50,
            "p99_ms": p99,
            "max_ms": worst,
            "slow": dataclasses.asdict(self.slow) | {"fate": self.slow.fate},
        }


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table(runs: list[Run], reference: str | None = None) -> str:
    """A fixed-width table; ``reference`` names the design the ``ratio`` column divides by."""
    ref = {r.scenario: r.rate for r in runs if r.design == reference}
    dw = max([len("design"), *(len(r.design) for r in runs)]) + 2
    sw = max([len("scenario"), *(len(r.scenario) for r in runs)]) + 2
    header = (
        f"{'design':<{dw}}{'scenario':<{sw}}{'deliveries/s':>13}{'ratio':>7}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'lost':>7}{'order':>6}{'CPU':>6}{'gen':>6}{'other':>6}"
        f"{'µs/dlv':>8}{'RSS MB':>8}  slow receivers / notes"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        p50, p99, worst = r.latency_ms()
        base = ref.get(r.scenario, 0.0)
        ratio = f"{r.rate / base:.2f}" if base else "-"
        cpu, gen, other = (
            "-" if math.isnan(v) else f"{100 * v:.0f}%"
            for v in (r.server_cpu, r.generator_cpu, r.other_cpu)
        )
        notes = "; ".join(n for n in (r.slow.fate if r.slow.count else "", r.note) if n)
        lines.append(
            f"{r.design:<{dw}}{r.scenario:<{sw}}{r.rate:>13,.0f}{ratio:>7}{_f(p50):>9}{_f(p99):>9}"
            f"{_f(worst):>9}{r.lost:>7}{r.out_of_order:>6}{cpu:>6}{gen:>6}{other:>6}"
            f"{_f(r.us_per_delivery):>8}"
            f"{_f(r.peak_rss_mb, 0):>8}  {notes}"
        )
    return "\n".join(lines)


def disturbed(runs: list[Run]) -> list[str]:
    """A warning for each run during which other programs used ``QUIET`` of a core or more."""
    return [
        f"warning: other programs used {run.other_cpu:.0%} of a core during {run.design} "
        f"'{run.scenario}': its figures are pessimistic, rerun when quiet"
        for run in runs
        if run.other_cpu >= QUIET
    ]
