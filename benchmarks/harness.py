"""One fan-out measurement: a server process, receivers in worker processes, one sender.

``await measure(design, receivers=…, messages=…)`` starts the design's server, spreads the
receivers over worker processes (``loadgen``), connects the sender, syncs everyone with a marker
message (so every join and history frame is behind us), then sends the messages and collects
what every receiver saw. Everything is bounded: a server that stops delivering shows up as lost
messages and a ``stalled`` note, never as a run that hangs.

The sender and the receivers may talk to different servers (``Design.sender_server``): that is
the hook for cross-process delivery (two course servers sharing rooms through Redis), which
``crossprocess.py`` will use once the course server has Redis-backed rooms.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import signal
import sys
import tempfile
import time
from array import array
from pathlib import Path
from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from benchmarks import loadgen
from benchmarks.serverproc import ROOT, ServerProcess
from benchmarks.stats import Run
from benchmarks.wires import SYNC, WIRES, Wire, chat_text, content


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

    def server(self) -> ServerProcess:
        return ServerProcess(self.module, *self.args, env=dict(self.env))


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
        text = loadgen._text(frame, self.inflater)
        if text.startswith("40"):
            self.ready.set()
        if loadgen.MARK not in text:
            reply = self.wire.control(text)
            if reply is not None:
                transport.send(WSMsgType.TEXT, reply.encode())
            return
        if not text[text.find(loadgen.MARK) + 3 :].startswith("-"):
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

    async def expect(self, word: str) -> str:
        """The next line, which must start with ``word``."""
        assert self.process is not None and self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode()
        if not line.startswith(word):
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"load generator said {line[:200]!r}, not {word!r}:\n{log}")
        return line[len(word) :].strip()

    def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.process.stdin.write(b"stop\n")

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.stop()
            try:
                async with asyncio.timeout(5):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._log.close()


async def _wait_all(workers: list[Worker], word: str, timeout: float) -> list[str]:
    async with asyncio.timeout(timeout):
        return await asyncio.gather(*(w.expect(word) for w in workers))


async def measure(
    design: Design,
    *,
    receivers: int = 100,
    messages: int = 100,
    slow: int = 0,
    rate: float = 0.0,
    window: int = 64,
    size: int = 64,
    deflate: bool = False,
    workers: int = 2,
    scenario: str = "",
    stall_timeout: float = 3.0,
    profile: str | None = None,
) -> Run:
    """Run one scenario against a fresh server of ``design``; see the module docstring.

    ``rate`` is messages per second (0: as fast as the room takes them, at most ``window``
    messages ahead of the sender's own copy coming back). ``slow`` receivers stop reading
    once synced. ``size`` is the length of each message's text. ``deflate``: every client offers
    permessage-deflate, as browsers do.
    """
    run = Run(design.name, scenario or ("burst" if not rate else f"{rate:g} msg/s"), receivers,
              messages)
    server = await design.server().start()
    pool: list[Worker] = []
    sender_transport: WSTransport | None = None
    try:
        run.idle_rss_mb = server.rss_mb()
        urls = [server.ws_url + design.receiver_path(i) for i in range(receivers)]
        slow_ids = set(range(receivers - slow, receivers))  # the last ones joined
        count = max(1, min(workers, receivers))
        for w in range(count):
            mine = list(range(w, receivers, count))
            pool.append(
                Worker(
                    {
                        "urls": [urls[i] for i in mine],
                        "slow": [k for k, i in enumerate(mine) if i in slow_ids],
                        "wire": design.wire,
                        "messages": messages,
                        "deflate": deflate,
                    }
                )
            )
        await asyncio.gather(*(w.start() for w in pool))
        setup = 30 + receivers / 20
        await _wait_all(pool, "connected", setup)
        sender = Sender(WIRES[design.wire])
        await loadgen.connect(server.ws_url + design.sender_path, sender, deflate, False)
        sender_transport = sender.transport
        async with asyncio.timeout(10):
            await sender.ready.wait()
        syncing = asyncio.ensure_future(_wait_all(pool, "synced", setup))
        while not syncing.done():  # repeat the marker: a Socket.IO join may land after one
            sender.send(content(SYNC, 0))
            await asyncio.wait([syncing], timeout=1.0)
        await syncing
        cpu = server.cpu_seconds()
        spy = await _profiler(server.pid, profile) if profile else None
        paddings = [chat_text(size, seq) for seq in range(min(messages, 64))]
        first_ns, run.sent, stalled = await _send(sender, messages, rate, window, paddings,
                                                  stall_timeout)
        if stalled:
            run.note = f"stalled: sender blocked {stall_timeout:g} s"
        reports = await _collect(pool, stalled, run, stall_timeout)
        server_cpu = server.cpu_seconds() - cpu
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        run.peak_rss_mb = server.peak_rss_mb()
    finally:
        if sender_transport is not None:
            sender_transport.disconnect(graceful=False)
        await asyncio.gather(*(w.close() for w in pool))
        await server.stop()
    _tally(run, reports, first_ns, slow)
    if run.seconds > 0:
        run.server_cpu = server_cpu / run.seconds
        run.generator_cpu = sum(r["cpu"] for r in reports) / run.seconds
    return run


async def _profiler(pid: int, path: str) -> asyncio.subprocess.Process:
    """py-spy sampling the server from now until it gets SIGINT; raw stacks go to ``path``."""
    beside = Path(sys.executable).with_name("py-spy")
    spy = await asyncio.create_subprocess_exec(
        str(beside) if beside.exists() else "py-spy", "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
        "--output", path, "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # py-spy attaches before the first message goes out
    return spy


async def _send(
    sender: Sender, messages: int, rate: float, window: int, paddings: list[str], stall: float
) -> tuple[int, int, bool]:
    """Send ``messages``; return the first send's time, how many went, and whether it stalled."""
    loop = asyncio.get_running_loop()
    first_ns = time.monotonic_ns()
    started = loop.time()
    for seq in range(messages):
        while seq - sender.echoed >= window:
            sender.changed.clear()
            try:
                async with asyncio.timeout(stall):
                    await sender.changed.wait()
            except TimeoutError:
                return first_ns, seq, True
        if rate:
            delay = started + seq / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        sender.send(content(seq, time.monotonic_ns(), paddings[seq % len(paddings)]))
        if seq % 16 == 15:
            await asyncio.sleep(0)  # let the echoes in
    return first_ns, messages, False


async def _collect(pool: list[Worker], stalled: bool, run: Run, stall: float) -> list[dict]:
    """Every worker's report: when all its receivers are done, or when deliveries stop."""
    if stalled:
        for worker in pool:
            worker.stop()
    results = [asyncio.ensure_future(w.expect("result ")) for w in pool]
    # A healthy run ends by itself; after the last send, allow the backlog to drain.
    budget = stall + run.messages * run.receivers / 20_000
    done, pending = await asyncio.wait(results, timeout=budget)
    if pending:
        run.note = run.note or f"incomplete after {budget:.0f} s"
        for worker in pool:
            worker.stop()
        await asyncio.wait(pending, timeout=30)
    return [json.loads(r.result()) for r in results]


def _tally(run: Run, reports: list[dict], first_ns: int, slow: int) -> None:
    for report in reports:
        values = array("q")
        values.frombytes(base64.b64decode(report["latencies"]))
        run.latencies.extend(values)
        run.delivered += report["received"]
        run.out_of_order += report["out_of_order"]
        run.duplicates += report["duplicates"]
        for entry in report["slow"]:
            run.slow.received += entry["received"]
            run.slow.close_codes.append(entry["close_code"])
    run.slow.count = slow
    run.lost = run.expected - run.delivered
    last = max((r["last_ns"] for r in reports), default=0)
    run.seconds = (last - first_ns) / 1e9 if last > first_ns else math.nan
