"""Figures for the fan-out runs: latency distributions and deliveries per second, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.stats import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def latency_and_rate(runs: list[Run], reference: str = "raw") -> Figure:
    """Left: each run's latency CDF (log scale). Right: deliveries per second, with ratios."""
    from matplotlib import pyplot as plt  # late: the benchmarks themselves need no display

    fig, (cdf, bars) = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    for run in runs:
        values = sorted(v / 1e6 for v in run.latencies_ns)
        if values:
            share = [(i + 1) / len(values) for i in range(len(values))]
            cdf.plot(values, share, label=f"{run.design} ({run.scenario})")
    cdf.axhline(0.99, color="grey", linewidth=0.8, linestyle=":")
    cdf.annotate("p99", (1, 0.99), xycoords=("axes fraction", "data"), ha="right", va="bottom")
    cdf.set(
        xscale="log",
        xlabel="delivery latency, ms (log)",
        ylabel="share delivered by then",
        title="Latency distribution",
    )
    cdf.legend(loc="lower right", fontsize="small")
    base = next((r.rate for r in runs if r.design == reference), 0.0)
    names = [f"{r.design}\n{r.scenario}" for r in runs]
    drawn = bars.barh(names, [r.rate for r in runs], color="tab:blue")
    labels = [f" {r.rate:,.0f}" + (f"  ({r.rate / base:.2f}×)" if base else "") for r in runs]
    bars.bar_label(drawn, labels=labels)
    bars.set(xlabel="deliveries per second", title=f"Throughput (ratio to {reference})")
    bars.margins(x=0.35)
    bars.invert_yaxis()
    plt.close(fig)  # the caller shows it; pyplot must not show it a second time
    return fig
