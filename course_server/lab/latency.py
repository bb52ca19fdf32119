"""A latency probe for broadcast rooms: how fast, and how completely, does a message fan out?

``probe(url)`` connects N receivers and one sender to the same room; the sender sends M
timestamped messages at a steady pace; each receiver records how long every message took to
arrive. Clients and server share a machine here, so one clock serves both ends.

Every wait is bounded: a room that stops delivering shows up as missing messages, never as a
probe that hangs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import statistics
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from course_server.lab.stats import percentile

_STAMP = re.compile(r"probe (\d+) (\d+\.\d+) ")


@dataclasses.dataclass
class Receiver:
    """What one receiver saw: its latencies in seconds, in arrival order."""

    latencies: list[float] = dataclasses.field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile latency in ms (``lab.stats``); NaN if nothing arrived."""
        return 1000 * percentile(sorted(self.latencies), p)


@dataclasses.dataclass
class Probe:
    """The result of one ``probe()`` run."""

    planned: int
    sent: int
    receivers: list[Receiver]

    @property
    def everyone_got_everything(self) -> bool:
        return all(r.received == self.planned for r in self.receivers)

    @property
    def median_ms(self) -> float:
        """The median of the receivers' median latencies."""
        return statistics.median(r.percentile(50) for r in self.receivers)

    def table(self) -> str:
        rows = [f"{'receiver':>8} {'received':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"]
        for n, r in enumerate(self.receivers, 1):
            rows.append(
                f"{n:>8} {r.received:>5}/{self.planned:<3} {r.percentile(50):8.1f} "
                f"{r.percentile(95):8.1f} {1000 * max(r.latencies, default=float('nan')):8.1f}"
            )
        return "\n".join(rows)


async def _receive(websocket: ClientConnection, into: Receiver, expected: int) -> None:
    try:
        async for text in websocket:
            match = _STAMP.search(text) if isinstance(text, str) else None
            if match is not None:
                into.latencies.append(time.perf_counter() - float(match[2]))
                if into.received == expected:
                    return
    except ConnectionClosed:
        return


async def _drain(websocket: ClientConnection) -> None:
    """Read and drop: a sender that does not read its own echoes becomes a slow consumer."""
    try:
        async for _ in websocket:
            pass
    except ConnectionClosed:
        return


async def probe(
    url: str,
    *,
    receivers: int = 3,
    messages: int = 50,
    size: int = 16_384,
    interval: float = 0.01,
    grace: float = 1.0,
) -> Probe:
    """Send ``messages`` of about ``size`` bytes every ``interval`` s; measure every receiver.

    Waits at most ``grace`` seconds for any one send, and as long after the last send for
    stragglers. The messages are plain
    text ``probe SEQ SENT_AT xxx…``; the room may wrap them (``Someone said: …``).
    """
    padding = "x" * max(0, size - 40)
    # No compression: the padding would shrink to nothing and the sizes would be a lie.
    clients = [await connect(url, compression=None, max_size=None) for _ in range(receivers + 1)]
    sender, listeners = clients[0], clients[1:]
    results = [Receiver() for _ in listeners]
    tasks = [
        asyncio.create_task(_receive(w, r, messages))
        for w, r in zip(listeners, results, strict=True)
    ]
    tasks.append(asyncio.create_task(_drain(sender)))
    sent = 0
    try:
        for seq in range(messages):
            # A send that cannot finish within the grace period means the room stopped reading.
            async with asyncio.timeout(grace):
                await sender.send(f"probe {seq} {time.perf_counter():.6f} {padding}")
            sent += 1
            await asyncio.sleep(interval)  # pacing, not ordering: a steady message rate
        await asyncio.wait(tasks[:-1], timeout=grace)
    except TimeoutError:
        pass  # the room stopped taking messages: the counts will show it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            client.transport.abort()  # a stuck room would not answer a polite close in time
    return Probe(planned=messages, sent=sent, receivers=results)
