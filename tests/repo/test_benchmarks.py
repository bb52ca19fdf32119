"""The benchmarks (``benchmarks/``), run tiny: every harness works and its counts add up.

No assertion looks at a rate or a latency's value: timings vary from machine to machine, and
the figures the course quotes come from ``python -m benchmarks.fanout``'s output, not from here.
The counts do not vary: every message sent reaches every receiver that reads, exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from conftest import wait_timeout

# The benchmarks' own dependencies come with the `bench` extra: pip install -e '.[bench]'.
for _module in ("picows", "socketio"):
    pytest.importorskip(_module, reason="the bench extra is not installed")

from benchmarks import crossprocess, fanout, transports, wires  # noqa: E402
from benchmarks.designs import DESIGNS, EVERY  # noqa: E402
from benchmarks.harness import Scenario, measure  # noqa: E402
from benchmarks.stats import Run, SlowReport, disturbed, table  # noqa: E402

pytestmark = pytest.mark.anyio
T = TypeVar("T")

RECEIVERS, MESSAGES = 3, 12
TINY = Scenario("burst", receivers=RECEIVERS, messages=MESSAGES)
# A stopped reader's kernel buffers take a few MB before any server can notice it stopped:
# enough big messages to get past that, to a small room.
STOPPED = Scenario(
    "1 stopped", receivers=3, messages=3000, size=1900, slow=1, stall_timeout=1, slow_grace=1
)


def bounded(coro: Coroutine[Any, Any, T], seconds: float = 30) -> T:
    """Run ``coro`` to completion from synchronous code, within a deadline."""

    async def run() -> T:
        async with asyncio.timeout(wait_timeout(seconds)):
            return await coro

    return asyncio.run(run())


@pytest.fixture(scope="module")
def bursts() -> dict[str, Run]:
    """One tiny burst per design, shared by the tests that read it."""
    return {name: bounded(measure(d, TINY, workers=2)) for name, d in DESIGNS.items()}


@pytest.mark.parametrize("design", list(DESIGNS))
def test_a_tiny_burst_reaches_every_receiver_once_and_in_order(
    bursts: dict[str, Run], design: str
) -> None:
    run = bursts[design]
    assert (run.sent, run.delivered, run.lost) == (MESSAGES, RECEIVERS * MESSAGES, 0)
    assert (run.duplicates, run.note) == (0, "")
    assert len(run.latencies_ns) == run.delivered
    assert all(latency > 0 for latency in run.latencies_ns)


@pytest.mark.parametrize("design", list(DESIGNS))
def test_a_burst_reports_the_servers_cost(bursts: dict[str, Run], design: str) -> None:
    run = bursts[design]
    assert run.rate > 0 and run.seconds > 0
    assert run.peak_rss_mb >= run.idle_rss_mb > 0
    assert run.server_cpu_seconds >= 0


def test_the_burst_table_has_a_row_per_design_and_ratios_to_the_raw_bound(
    bursts: dict[str, Run],
) -> None:
    lines = table(list(bursts.values()), reference="raw").splitlines()
    assert [line.split()[0] for line in lines[2:]] == list(DESIGNS)
    assert lines[2 + list(DESIGNS).index("raw")].split()[3] == "1.00"


async def test_the_course_cuts_off_a_stopped_reader_and_the_others_lose_nothing() -> None:
    async with asyncio.timeout(wait_timeout(40)):
        run = await measure(DESIGNS["course"], STOPPED, workers=1)
    assert run.lost == 0 and run.delivered == 2 * STOPPED.messages
    assert run.slow.cut_off
    assert run.slow.received < STOPPED.messages


async def test_the_naive_design_stalls_every_receiver_behind_a_stopped_reader() -> None:
    async with asyncio.timeout(wait_timeout(40)):
        run = await measure(DESIGNS["naive"], STOPPED, workers=1)
    assert run.note.startswith("stalled")
    assert run.lost > 0 and run.sent < STOPPED.messages
    assert run.slow.close_codes == [None]  # never cut off: still open, still in the list


async def test_a_deflate_run_counts_compressed_payloads() -> None:
    """Every client offers permessage-deflate; the course server accepts; frames shrink."""
    packed = Scenario("deflate", receivers=2, messages=20, size=400, deflate=True)
    async with asyncio.timeout(wait_timeout(30)):
        run = await measure(DESIGNS["course"], packed, workers=1)
    assert run.lost == 0
    assert run.bytes_per_delivery < 400  # the text alone is 400 characters, the JSON more


async def test_polling_vs_push_runs_against_a_server_process() -> None:
    async with asyncio.timeout(wait_timeout(30)):
        rows = await transports.run(events=5, interval=0.01, poll_intervals=(0.02,))
    assert [(r.method, r.lost) for r in rows] == [
        ("polling every 20 ms", 0),
        ("WebSocket", 0),
        ("WebSocket, no deflate", 0),
        ("SSE", 0),
    ]
    assert "requests/event" in transports.per_event(rows)


async def test_cross_process_delivery_through_redis_reaches_every_receiver_once() -> None:
    """Receivers on one server process, the sender on another, a throwaway Redis between."""
    async with asyncio.timeout(wait_timeout(60)):
        runs = await crossprocess.run(
            receivers=2, messages=20, rate=200, setups=(crossprocess.ACROSS,)
        )
    assert [(r.design, r.delivered, r.lost, r.duplicates) for r in runs] == [
        (crossprocess.ACROSS, 40, 0, 0)
    ]
    assert all(latency > 0 for latency in runs[0].latencies_ns)


def latencies(design: str, *milliseconds: float) -> Run:
    run = Run(design, "1000 msg/s", 1, len(milliseconds))
    run.latencies_ns.extend(int(ms * 1e6) for ms in milliseconds)
    run.delivered = len(milliseconds)
    return run


def test_the_redis_verdict_is_the_p99_difference_against_5_ms() -> None:
    base = latencies(crossprocess.BASELINE, 1, 2)
    assert crossprocess.verdict([base, latencies(crossprocess.ACROSS, 3, 6)])[1] is True
    assert crossprocess.verdict([base, latencies(crossprocess.ACROSS, 3, 8)])[1] is False
    assert (
        "adds 4.00 ms to p99" in crossprocess.verdict([base, latencies(crossprocess.ACROSS, 6)])[0]
    )


def test_the_redis_verdict_refuses_runs_that_lost_messages() -> None:
    across = latencies(crossprocess.ACROSS, 1)
    across.lost = 3
    assert crossprocess.verdict([latencies(crossprocess.BASELINE, 1), across])[1] is None


def step(rate: float, added_ms: float) -> list[Run]:
    """A knee step's runs: Redis adds ``added_ms`` to a 1 ms p99."""
    return [latencies(crossprocess.BASELINE, 1), latencies(crossprocess.ACROSS, 1 + added_ms)]


def test_the_knee_is_the_highest_rate_within_10_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    added = {1000: 1.0, 2000: 4.0, 5000: 9.0, 10_000: 30.0, 15_000: 1.0}
    measured: list[float] = []

    async def fake_run(*, rate: float, **_: Any) -> list[Run]:
        measured.append(rate)
        return step(rate, added[int(rate)])

    monkeypatch.setattr(crossprocess, "run", fake_run)
    steps = bounded(crossprocess.knee(rates=tuple(added), budget=60))
    # Past the knee it stops (a miss measured twice); 15,000 is never tried.
    assert measured == [1000, 2000, 5000, 10_000, 10_000]
    assert "knee: 5,000 msg/s" in crossprocess.knee_report(steps, busy=0.0)


def test_a_knee_step_that_lost_messages_is_past_the_knee() -> None:
    lossy = step(2000, 1.0)
    lossy[1].lost = 1
    report = crossprocess.knee_report([(1000, step(1000, 1.0)), (2000, lossy)], busy=0.0)
    assert "knee: 1,000 msg/s" in report


def test_of_repeated_latency_runs_the_lowest_p99_is_kept() -> None:
    calm, busy = latencies("x", 1, 2), latencies("x", 1, 20)
    assert crossprocess.lowest_p99([busy, calm]) == [calm]


def test_the_fanout_plan_runs_every_design_then_the_stopped_reader_then_deflate() -> None:
    steps = fanout.plan(fanout.parse_args(["--receivers", "50", "--messages", "10"]))
    assert [(name, s.name) for name, s in steps] == [
        *((name, "burst") for name in EVERY),
        ("course", "all reading"),
        ("course", "1 stopped"),
        ("naive", "all reading"),
        ("naive", "1 stopped"),
        ("course", "burst, deflate"),
        ("raw", "burst, deflate"),
    ]
    assert {s.receivers for name, s in steps if s.name == "1 stopped"} == {50}


def test_repeated_runs_keep_the_fastest() -> None:
    slow, fast = Run("raw", "burst", 1, 1), Run("raw", "burst", 1, 1)
    slow.delivered = fast.delivered = 10
    slow.seconds, fast.seconds = 2.0, 1.0
    assert fanout.best([slow, fast]) == [fast]


def burst(design: str, rate: float, cpu: float, cpu_seconds: float) -> Run:
    run = Run(design, "burst", 1, 1)
    run.delivered, run.seconds = int(rate), 1.0
    run.server_cpu, run.server_cpu_seconds = cpu, cpu_seconds
    return run


def test_throughput_targets_are_judged_by_rate_when_every_server_was_cpu_bound() -> None:
    runs = [burst("course", 96, 1.0, 1.0), burst("raw", 100, 1.0, 1.0), burst("socketio", 10, 1, 1)]
    assert [met for _, _, met in fanout.verdicts(runs)] == [True, True]


def test_the_course_below_095_of_the_raw_bound_misses_its_target() -> None:
    runs = [burst("course", 94, 1.0, 1.0), burst("raw", 100, 1.0, 1.0), burst("socketio", 10, 1, 1)]
    assert [met for _, _, met in fanout.verdicts(runs)] == [False, True]


def test_throughput_targets_fall_back_to_cpu_per_delivery_on_a_busy_machine() -> None:
    """The raw server got half a core: its rate says little, its CPU per delivery still counts."""
    runs = [burst("course", 70, 1.0, 1.0), burst("raw", 100, 0.5, 0.25)]
    figure, met = fanout.throughput(runs, "raw", 0.95)
    assert "by server CPU per delivery" in figure and met is False  # 0.25 µs vs 1 µs: 0.25


def test_only_runs_other_programs_disturbed_are_named_in_the_report() -> None:
    calm, busy = burst("raw", 100, 1.0, 1.0), burst("course", 96, 1.0, 1.0)
    calm.other_cpu, busy.other_cpu = 0.29, 0.31
    assert disturbed([calm, busy]) == [
        "warning: other programs used 31% of a core during course 'burst': its figures are "
        "pessimistic, rerun when quiet"
    ]
    table_part, rest = fanout.report([calm, busy], busy=0.0).split("\n\n", 1)
    assert table_part == table([calm, busy], reference="raw")  # readers take the table so
    assert rest.startswith(disturbed([busy])[0])


def test_a_benchmark_message_is_found_in_any_wrapping() -> None:
    text = wires.content(7, 123456789, "hello there")
    for wrapped in (
        text,
        wires.WIRES["chat"].frame(text),
        wires.WIRES["socketio"].frame(text),
        f"Someone said: {text}",
    ):
        assert wires.parse(wrapped) == (7, 123456789)
    assert wires.parse('{"type":"join","content":"r00001 joined the room"}') is None


def test_socketio_answers_the_servers_open_and_pings() -> None:
    wire = wires.WIRES["socketio"]
    assert wire.control('0{"sid":"x","pingInterval":25000}') == "40"
    assert wire.control("2") == "3"
    assert wire.control('42["message","x"]') is None


def test_chat_text_is_the_size_asked_and_the_same_for_the_same_seed() -> None:
    assert len(wires.chat_text(100, seed=1)) == 100
    assert wires.chat_text(100, seed=1) == wires.chat_text(100, seed=1)
    assert wires.chat_text(0, seed=1) == ""


def test_a_stopped_reader_is_described_by_what_it_saw() -> None:
    assert SlowReport(1, 10, [4008]).fate == "cut off (4008 slow consumer)"
    assert SlowReport(1, 10, [None]).fate == "still open"
    assert not SlowReport(1, 10, [None]).cut_off
    assert SlowReport(0).fate == "-"
