"""One fan-out measurement: a server process, receivers in worker processes, one sender.

``await measure(design, Scenario(...))`` starts the design's server, spreads the receivers over
worker processes (``loadgen``), connects the sender, syncs everyone with a marker message (so
every join and history frame is behind us), then sends the messages and collects what every
receiver saw. Everything is bounded: a server that stops delivering shows up as lost messages
and a ``stalled`` note, never as a run that hangs.

The generator's processes run at a lower priority than the server: on a two-core machine they
share the cores, and where they compete the server wins, so the generator cannot slow down what
it measures. ``Run.server_cpu`` near 100% says the server was the bottleneck.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from benchmarks import loadgen
from benchmarks.machine import busy_cpu_seconds
from benchmarks.stats import Run
from benchmarks.wires import MARK, SYNC, WIRES, Wire, chat_text, content
from course_server.tools import processes as server_processes
from course_server.tools.processes import ServerProcess

ROOT = Path(__file__).resolve().parent.parent  # where ``python -m benchmarks.…`` finds its package


@dataclasses.dataclass(frozen=True)
class Design:
    """A server to measure: how to start it, where its room is, how it frames messages."""

    name: str
    module: str  # ``python -m MODULE --port 0``
    wire: str  # a key of ``wires.WIRES``
    receiver_path: Callable[[int], str]
    sender_path: str
    env: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    # 2: receivers on one server process, the sender on another (rooms shared between them,
    # e.g. through Redis): cross-process delivery. The figures are the receivers' server's.
    processes: int = 1
    ready_path: str | None = None  # answers 200 once the server is up; None: its URL says so
    # Readies what the design needs outside the venv (once) and says why it cannot run here,
    # or None; a design without one always runs.
    prepare: Callable[[], str | None] | None = None

    def unavailable(self) -> str | None:
        """Why this design cannot run on this machine (one line), or ``None``: it can."""
        return self.prepare() if self.prepare is not None else None

    def start(self) -> ServerProcess:
        """Start one server of this design, blocking until it is ready (call it in a thread)."""
        return server_processes.start(
            self.module, *self.args, env=dict(self.env), ready_path=self.ready_path, cwd=ROOT
        )


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What the clients do: how many, how much, how fast, and who stops reading.

    ``rate`` is messages per second; 0 sends as fast as the room takes them, at most ``window``
    messages ahead of the sender's own copy coming back. ``slow`` receivers stop reading once
    synced. ``size`` is the length of each message's text. ``deflate``: every client offers
    permessage-deflate, as browsers do.
    """

    name: str = "burst"
    receivers: int = 100
    messages: int = 100
    slow: int = 0
    rate: float = 0.0
    window: int = 64
    size: int = 64
    deflate: bool = False
    stall_timeout: float = 3.0  # no message back for this long: the room has stalled
    slow_grace: float = 3.0  # at the end, how long a stopped reader may read to learn its fate


class Sender(WSListener):
    """The one client that talks: counts its own messages coming back (flow control)."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.transport: WSTransport | None = None
        self.echoed = 0
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()  # Socket.IO: the namespace is joined
        self.inflater = loadgen.zlib.decompressobj(-15)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.wire.name != "socketio":
            self.ready.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        text = loadgen.text_of(frame, self.inflater)
        start = text.find(MARK)
        if start < 0:
            if text.startswith("40"):
                self.ready.set()
            reply = self.wire.control(text)
            if reply is not None:
                transport.send(WSMsgType.TEXT, reply.encode())
        elif text[start + len(MARK)] != "-":  # not a sync marker
            self.echoed += 1
            self.changed.set()

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, self.wire.frame(text).encode())


class Worker:
    """One ``python -m benchmarks.loadgen`` process and its line protocol."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.process: asyncio.subprocess.Process | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            json.dumps(self.job),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=2**28,  # the result line carries every latency
        )
        if hasattr(os, "setpriority"):
            os.setpriority(os.PRIO_PROCESS, self.process.pid, 10)  # the server goes first

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    async def expect(self, word: str) -> str:
        """The next line, which must start with ``word``."""
        assert self.process is not None and self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode()
        if not line.startswith(word):
            raise RuntimeError(f"load generator said {line[:200]!r}, not {word!r}:\n{self.log()}")
        return line[len(word) :].strip()

    def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.process.stdin.write(b"stop\n")

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.stop()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._log.close()


async def _all(workers: list[Worker], word: str, timeout: float) -> list[str]:
    async with asyncio.timeout(timeout):
        return await asyncio.gather(*(w.expect(word) for w in workers))


def _jobs(design: Design, scenario: Scenario, base_url: str, count: int) -> list[dict[str, Any]]:
    """Receivers dealt round-robin to ``count`` workers; the last ``slow`` joined are slow."""
    n = scenario.receivers
    slow = set(range(n - scenario.slow, n))
    jobs = []
    for w in range(count):
        mine = range(w, n, count)
        jobs.append(
            {
                "urls": [base_url + design.receiver_path(i) for i in mine],
                "slow": [k for k, i in enumerate(mine) if i in slow],
                "wire": design.wire,
                "messages": scenario.messages,
                "deflate": scenario.deflate,
                "slow_grace": scenario.slow_grace,
            }
        )
    return jobs


async def measure(
    design: Design, scenario: Scenario, *, workers: int = 2, profile: str | None = None
) -> Run:
    """Run ``scenario`` against a fresh server of ``design``; see the module docstring.

    ``profile``: a path where py-spy writes the server's stacks (``--format raw``) for the
    measured window only, from the first message sent to the last one delivered.
    """
    run = Run(design.name, scenario.name, scenario.receivers, scenario.messages)
    run.slow.count = scenario.slow
    servers: list[ServerProcess] = []
    pool: list[Worker] = []
    sender = Sender(WIRES[design.wire])
    reports: list[dict[str, Any]] = []
    try:
        starting = [asyncio.to_thread(design.start) for _ in range(design.processes)]
        for started in asyncio.as_completed(starting):
            servers.append(await started)  # kept one by one: each one started is stopped
        server = servers[0]
        pool += [Worker(job) for job in _jobs(design, scenario, server.ws_url, max(1, workers))]
        run.idle_rss_mb = server.rss_mb()
        await asyncio.gather(*(w.start() for w in pool))
        setup = 30 + scenario.receivers / 20
        await _all(pool, "connected", setup)
        url = servers[-1].ws_url + design.sender_path
        await loadgen.connect(url, sender, scenario.deflate, small_buffer=False)
        async with asyncio.timeout(10):
            await sender.ready.wait()
        syncing = asyncio.ensure_future(_all(pool, "synced", setup))
        while not syncing.done():  # repeat the marker: a Socket.IO join may land after one
            sender.send(content(SYNC, 0))
            await asyncio.wait([syncing], timeout=1.0)
        await syncing
        spy = await _profiler(server.pid, profile) if profile else None
        cpu, machine, ours = server.cpu_seconds(), busy_cpu_seconds(), time.process_time()
        first_ns, stalled = await _send(sender, scenario, run)
        await _until_done(pool, scenario, run, stalled)
        server_cpu = server.cpu_seconds() - cpu
        machine = busy_cpu_seconds() - machine
        ours = time.process_time() - ours  # the sender's process (this one)
        run.peak_rss_mb = server.rss_mb(peak=True)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        reports = [json.loads(line) for line in await _all(pool, "result ", 30)]
    finally:
        if sender.transport is not None:
            sender.transport.disconnect(graceful=False)
        await asyncio.gather(*(w.close() for w in pool))
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers))
    _tally(run, reports, first_ns)
    if run.seconds > 0:
        run.server_cpu = server_cpu / run.seconds
        generator = sum(r["cpu"] for r in reports) + ours
        run.generator_cpu = generator / run.seconds
        # What other programs used meanwhile: where this is high, every figure is pessimistic.
        run.other_cpu = max(0.0, machine - server_cpu - generator) / run.seconds
    run.server_cpu_seconds = server_cpu
    return run


async def _profiler(pid: int, path: str) -> asyncio.subprocess.Process:
    """py-spy sampling the server until it gets SIGINT (install py-spy for ``--profile``)."""
    beside = Path(sys.executable).with_name("py-spy")
    command = str(beside) if beside.exists() else "py-spy"
    spy = await asyncio.create_subprocess_exec(
        *(command, "record", "--pid", str(pid), "--rate", "250"),
        *("--format", "raw", "--output", path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # py-spy attaches before the first message goes out
    return spy


async def _send(sender: Sender, scenario: Scenario, run: Run) -> tuple[int, bool]:
    """Send the messages; return the first send's time and whether the room stalled."""
    loop = asyncio.get_running_loop()
    paddings = [chat_text(scenario.size, seed) for seed in range(64)]
    first_ns = time.monotonic_ns()
    started = loop.time()
    for seq in range(scenario.messages):
        while seq - sender.echoed >= scenario.window:
            sender.changed.clear()
            try:
                async with asyncio.timeout(scenario.stall_timeout):
                    await sender.changed.wait()
            except TimeoutError:
                run.note = f"stalled: nothing came back for {scenario.stall_timeout:g} s"
                return first_ns, True
        if scenario.rate:
            delay = started + seq / scenario.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        sender.send(content(seq, time.monotonic_ns(), paddings[seq % len(paddings)]))
        run.sent += 1
        if seq % 16 == 15:
            await asyncio.sleep(0)  # let the echoes in
    return first_ns, False


async def _until_done(pool: list[Worker], scenario: Scenario, run: Run, stalled: bool) -> None:
    """Wait for every worker's ``done``: all its receivers have everything, or delivery stops."""
    if stalled:
        for worker in pool:
            worker.stop()
    done = [asyncio.ensure_future(w.expect("done")) for w in pool]
    # A healthy run ends by itself; after the last send, give the backlog time to drain.
    budget = scenario.stall_timeout + scenario.messages * scenario.receivers / 10_000
    _, pending = await asyncio.wait(done, timeout=budget)
    if pending:
        run.note = run.note or f"incomplete after {budget:.0f} s"
        for worker in pool:
            worker.stop()
        await asyncio.wait(pending, timeout=30)
    for future in done:
        future.result()  # a worker that failed says why


def _tally(run: Run, reports: list[dict[str, Any]], first_ns: int) -> None:
    for report in reports:
        values = array("q")
        values.frombytes(base64.b64decode(report["latencies"]))
        run.latencies_ns.extend(values)
        run.delivered += report["received"]
        run.out_of_order += report["out_of_order"]
        run.duplicates += report["duplicates"]
        run.wire_bytes += report["wire_bytes"]
        if report["closed_early"]:
            run.note = f"closed early: {report['closed_early']}"
        for entry in report["slow"]:
            run.slow.received += entry["received"]
            run.slow.close_codes.append(entry["close_code"])
    run.lost = run.expected - run.delivered
    last = max((r["last_ns"] for r in reports), default=0)
    run.seconds = (last - first_ns) / 1e9 if last > first_ns else math.nan
