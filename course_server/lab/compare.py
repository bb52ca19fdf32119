"""Lesson 01's experiment: the same events delivered by short polling, a WebSocket and SSE.

``await run(base_url)`` publishes ``events`` events, ``interval`` seconds apart on average, while
these clients read the feed at the same time, each through its own ``CountingProxy``:

- short polling (``GET /feed/poll``) every 50 ms, 250 ms and 1 s (``poll_intervals``);
- a WebSocket (``WS /feed/ws``) that the server pushes each event to, compressed and not;
- one Server-Sent Events stream (``GET /feed/sse``).

Per method it reports the events delivered and lost, the HTTP requests made, the bytes on the wire
each way (everything: headers, frames, handshake, close), and the delivery latency, median and
95th percentile (nearest rank: ``lab.stats``). Latency is the client's ``time.time()`` on
receipt minus the server's ``time.time()`` at publication: client and server run on the same
machine, so the two clocks are the same clock. Every client stops when it has every event or at
a deadline, never later.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect

from course_server.lab.stats import percentile
from course_server.lab.wire import CountingProxy, WireStats

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclasses.dataclass(frozen=True)
class Row:
    """One method's results; ``latency_*`` are in milliseconds."""

    method: str
    delivered: int
    lost: int
    requests: int
    connections: int
    bytes_up: int
    bytes_down: int
    latency_median_ms: float
    latency_p95_ms: float

    @property
    def bytes_per_event(self) -> float:
        """Bytes on the wire, both ways, per event delivered."""
        return (self.bytes_up + self.bytes_down) / max(self.delivered, 1)


@dataclasses.dataclass
class _Received:
    """What one client got: event id → receive time minus publication time, and its requests."""

    latencies: dict[int, float] = dataclasses.field(default_factory=dict)
    requests: int = 0

    def take(self, event: dict[str, Any], first: int, last: int) -> None:
        event_id = event["id"]
        if first <= event_id <= last and event_id not in self.latencies:
            self.latencies[event_id] = time.time() - event["published_at"]

    def complete(self, first: int, last: int) -> bool:
        return len(self.latencies) == last - first + 1


# A client reads events ``first``..``last`` from the server at ``base_url`` into ``got``.
Client = Callable[[str, int, int, _Received, asyncio.Event], Awaitable[None]]


def poller(interval: float) -> Client:
    """A short-polling client: ask every ``interval`` s for the events after the last one it has."""

    async def poll(
        base_url: str, first: int, last: int, got: _Received, ready: asyncio.Event
    ) -> None:
        after = first - 1
        async with httpx.AsyncClient(base_url=base_url) as http:
            loop = asyncio.get_running_loop()
            next_poll = loop.time()
            while not got.complete(first, last):
                reply = await http.get("/feed/poll", params={"after": after})
                got.requests += 1
                ready.set()
                for event in reply.json()["events"]:
                    got.take(event, first, last)
                    after = max(after, event["id"])
                # A fixed rate, like setInterval: the request's own time does not add up.
                next_poll += interval
                await asyncio.sleep(max(0.0, next_poll - loop.time()))

    return poll


def websocket_client(compression: str | None = "deflate") -> Client:
    """One WebSocket; the server pushes each event as a JSON text frame.

    ``websockets`` offers the permessage-deflate extension by default and uvicorn accepts it, so
    frames are compressed, with a dictionary that carries over from one message to the next;
    ``compression=None`` turns it off.
    """

    async def push(
        base_url: str, first: int, last: int, got: _Received, ready: asyncio.Event
    ) -> None:
        url = "ws" + base_url.removeprefix("http") + f"/feed/ws?after={first - 1}"
        async with connect(url, compression=compression) as websocket:
            got.requests += 1
            ready.set()
            while not got.complete(first, last):
                got.take(json.loads(await websocket.recv()), first, last)

    return push


async def sse_client(
    base_url: str, first: int, last: int, got: _Received, ready: asyncio.Event
) -> None:
    """One Server-Sent Events stream, read line by line."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=None) as http,
        http.stream("GET", "/feed/sse", params={"after": first - 1}) as response,
    ):
        got.requests += 1
        ready.set()
        async for data in sse_data(response.aiter_lines()):
            got.take(json.loads(data), first, last)
            if got.complete(first, last):
                return


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` of each event in a ``text/event-stream`` (the client side of the format)."""
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
        # ``id:``, ``event:``, ``retry:`` and ``:`` comments carry nothing this client needs.


async def run(
    base_url: str,
    events: int = 30,
    interval: float = 0.05,
    poll_intervals: tuple[float, ...] = (0.05, 0.25, 1.0),
    seed: int = 1,
) -> list[Row]:
    """Publish ``events`` events, ``interval`` s apart on average, while every method reads them.

    Returns one row per method. Takes about ``events * interval + max(poll_intervals)``
    seconds, and at most 10 s more.
    """
    clients: dict[str, Client] = {f"polling every {label(s)}": poller(s) for s in poll_intervals}
    clients["WebSocket"] = websocket_client()
    clients["WebSocket, no deflate"] = websocket_client(compression=None)
    clients["SSE"] = sse_client
    target = urlsplit(base_url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    deadline = events * interval + max(poll_intervals, default=0) + 10

    async with httpx.AsyncClient(base_url=base_url) as publisher:
        first = (await publisher.get("/feed/poll", params={"after": 0})).json()["last_id"] + 1
        last = first + events - 1
        results: dict[str, tuple[_Received, WireStats]] = {}
        readiness = {name: asyncio.Event() for name in clients}

        async def measure(name: str, client: Client) -> None:
            got = _Received()
            async with CountingProxy(host, port) as proxy:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(deadline):
                        await client(proxy.url(), first, last, got, readiness[name])
            results[name] = (got, proxy.stats)

        async with asyncio.TaskGroup() as group:
            for name, client in clients.items():
                group.create_task(measure(name, client))
            # Publish only once every client is listening, so none starts behind the others.
            async with asyncio.timeout(10):
                await asyncio.gather(*(ready.wait() for ready in readiness.values()))
            await publish(publisher, events, interval, seed)

    return [_row(name, *results[name], events) for name in clients]


async def publish(http: httpx.AsyncClient, events: int, interval: float, seed: int) -> None:
    """POST ``events`` events, ``interval`` s apart on average, straight to the server.

    The gaps are random (uniform between 0 and twice ``interval``, from a seeded generator), as
    real events are: at a fixed rate equal to a poller's, every event would land at the same
    point of its polling cycle, and that poller's latency would be a constant set by chance.
    """
    gaps = random.Random(seed)
    loop = asyncio.get_running_loop()
    due = loop.time()
    for n in range(1, events + 1):
        await asyncio.sleep(max(0.0, due - loop.time()))
        reply = await http.post("/feed/publish", json={"data": f"event {n} of {events}"})
        reply.raise_for_status()
        due += gaps.uniform(0, 2 * interval)


def _row(method: str, got: _Received, wire: WireStats, events: int) -> Row:
    latencies = sorted(1000 * s for s in got.latencies.values())
    return Row(
        method=method,
        delivered=len(latencies),
        lost=events - len(latencies),
        requests=got.requests,
        connections=wire.connections,
        bytes_up=wire.bytes_up,
        bytes_down=wire.bytes_down,
        latency_median_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
    )


def label(seconds: float) -> str:
    """``0.05`` → ``50 ms``, ``1.0`` → ``1 s``."""
    return f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"


def as_table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table."""
    header = (
        f"{'method':<22}{'delivered':>10}{'lost':>6}{'requests':>10}{'conns':>7}"
        f"{'bytes up':>10}{'bytes down':>12}{'bytes/event':>13}{'median ms':>11}{'p95 ms':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.method:<22}{r.delivered:>10}{r.lost:>6}{r.requests:>10}{r.connections:>7}"
            f"{r.bytes_up:>10}{r.bytes_down:>12}{r.bytes_per_event:>13.0f}"
            f"{r.latency_median_ms:>11.1f}{r.latency_p95_ms:>9.1f}"
        )
    return "\n".join(lines)


def plot(rows: list[Row]) -> Figure:
    """Three panels, one bar per method: latency, bytes on the wire per event, requests made.

    Latency and requests use log scales: they span three orders of magnitude.
    """
    from matplotlib import pyplot as plt  # imported late: the package itself needs no display

    names = [r.method for r in rows]
    fig, (lat, wire, reqs) = plt.subplots(
        1, 3, figsize=(13, 3.6), sharey=True, layout="constrained"
    )
    bars = lat.barh(names, [r.latency_p95_ms for r in rows], color="lightsteelblue", label="p95")
    lat.barh(names, [r.latency_median_ms for r in rows], color="tab:blue", label="median")
    lat.bar_label(
        bars, labels=[f" {r.latency_median_ms:.0f} / {r.latency_p95_ms:.0f}" for r in rows]
    )
    lat.set(title="Delivery latency, ms (median / p95)", xscale="log")
    lat.legend(loc="lower right")
    down = [r.bytes_down / max(r.delivered, 1) for r in rows]
    up = [r.bytes_up / max(r.delivered, 1) for r in rows]
    wire.barh(names, down, label="server → client")
    bars = wire.barh(names, up, left=down, label="client → server")
    wire.bar_label(bars, labels=[f" {r.bytes_per_event:.0f}" for r in rows])
    wire.set(title="Bytes on the wire per event")
    wire.legend(loc="lower right")
    bars = reqs.barh(names, [r.requests for r in rows])
    reqs.bar_label(bars, fmt=" %d")
    reqs.set(title="HTTP requests made", xscale="log")
    lat.invert_yaxis()  # the table's order, top to bottom (the y axis is shared)
    for axes in (lat, wire, reqs):
        axes.margins(x=0.3)  # room for the labels after the longest bar
    plt.close(fig)  # the caller shows it (Jupyter does); pyplot must not show it a second time
    return fig
