"""Hold N chat connections on one server process for a while and measure what they cost it.

The server runs in its own process, so its memory and CPU time are its own: RSS (resident
memory) is read before any connection, once all are open, and every second while they are held;
CPU time (user + system) at each of those points. Clients are ``websockets`` connections in
this process, spread over rooms of ``room_size``; each reads and drops what it receives. The
server pings every connection every ``ping_interval`` seconds; the clients answer by
themselves, and a connection still open at the end answered every ping in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import resource
import time
from collections import Counter

import httpx
from websockets.asyncio.client import ClientConnection, connect

from course_server.tools import processes
from course_server.tools.processes import cpu_seconds, rss_bytes


@dataclasses.dataclass
class Usage:
    """A process's resident memory (bytes) and CPU time used so far (seconds)."""

    rss: int
    cpu: float


def usage(pid: int) -> Usage:
    """Process ``pid``'s resident memory and CPU time now (``tools.processes`` reads them)."""
    return Usage(rss_bytes(pid), cpu_seconds(pid))


@dataclasses.dataclass
class Report:
    connections: int
    compress: bool  # permessage-deflate on (COURSE_WS_DEFLATE, and the clients offer it)
    held: float  # seconds every connection was held open
    ping_interval: float
    baseline: Usage
    connected: Usage
    end: Usage
    peak_rss: int
    still_open: int  # connections open at the end, as the clients see them
    in_rooms: int  # members the server lists in its rooms at the end
    connect_seconds: float
    dropped: dict[str, int]  # why connections closed while held: close code and reason, counted

    @property
    def bytes_per_connection(self) -> float:
        return (self.connected.rss - self.baseline.rss) / self.connections

    @property
    def hold_cpu_seconds(self) -> float:
        return self.end.cpu - self.connected.cpu

    def __str__(self) -> str:
        mib = 1024 * 1024
        return "\n".join(
            [
                f"connections held:      {self.still_open}/{self.connections} open for "
                f"{self.held:.0f} s, {self.in_rooms} listed in rooms; pings every "
                f"{self.ping_interval:g} s; permessage-deflate {'on' if self.compress else 'off'}",
                f"server RSS:            {self.baseline.rss / mib:.1f} MiB before, "
                f"{self.connected.rss / mib:.1f} MiB connected, {self.peak_rss / mib:.1f} MiB "
                "peak",
                f"memory per connection: {self.bytes_per_connection / 1024:.1f} KiB",
                f"server CPU:            {self.connected.cpu - self.baseline.cpu:.2f} s to "
                f"accept all in {self.connect_seconds:.1f} s; {self.hold_cpu_seconds:.2f} s "
                f"while holding ({100 * self.hold_cpu_seconds / self.held:.1f}% of one core)",
            ]
            + [f"dropped:               {n} closed with {why}" for why, n in self.dropped.items()]
        )


def raise_fd_limit(needed: int) -> None:
    """Raise this process's open-file limit (children inherit it) to ``needed`` if allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise OSError(f"{needed} open files needed, the hard limit is {hard}")


async def _drain(websocket: ClientConnection) -> None:
    """Read and drop: a client that does not read would become a slow consumer."""
    with contextlib.suppress(Exception):
        async for _ in websocket:
            pass


async def _join(url: str, name: str, timeout: float, compress: bool) -> ClientConnection:
    """Open one chat connection and read up to its own join."""
    # No client pings: the server's pings are what this measures; the client answers them.
    websocket = await connect(
        url,
        ping_interval=None,
        open_timeout=timeout,
        max_queue=4,
        # Browsers always offer it; a server that accepts pays for zlib state per connection.
        compression="deflate" if compress else None,
    )
    async with asyncio.timeout(timeout):
        async for frame in websocket:
            if f'"username":"{name}"' in frame and '"type":"join"' in frame:
                break
    return websocket


async def hold(
    connections: int = 1000,
    seconds: float = 60,
    *,
    ping_interval: float = 5,
    ping_timeout: float = 5,
    room_size: int = 100,
    batch: int = 50,
    compress: bool = False,
    timeout: float = 30,
) -> Report:
    """Start a server, open ``connections`` to it, hold them ``seconds``, measure; see module."""
    # Each process holds one end of every connection: the server its sockets, this one the clients.
    raise_fd_limit(connections + 256)
    env = {
        "COURSE_WS_PING_INTERVAL": str(ping_interval),
        "COURSE_WS_PING_TIMEOUT": str(ping_timeout),
        "COURSE_WS_DEFLATE": "true" if compress else "false",
    }
    with processes.spawn(env=env, timeout=timeout) as server:
        pid, base, ws_base = server.pid, server.http_url, server.ws_url
        names = [(f"room{n // room_size}", f"user{n}") for n in range(connections)]
        # One connection first, so what the first connection loads is not counted per connection.
        warm = await _join(f"{ws_base}/chat/warmup/warmup", "warmup", timeout, compress)
        await warm.close()
        baseline = usage(pid)
        started = time.monotonic()
        clients: list[ClientConnection] = []
        readers: list[asyncio.Task[None]] = []
        try:
            for first in range(0, connections, batch):
                joined = await asyncio.gather(
                    *(
                        _join(f"{ws_base}/chat/{room}/{name}", name, timeout, compress)
                        for room, name in names[first : first + batch]
                    )
                )
                # Read from the moment each has joined: a client whose small queue fills with
                # the next joins stops reading its socket, misses the server's pings and is
                # dropped (1011) once opening them all outlasts one ping interval.
                readers += [asyncio.create_task(_drain(client)) for client in joined]
                clients += joined
            connect_seconds = time.monotonic() - started
            connected = usage(pid)
            peak = connected.rss
            held_from = time.monotonic()
            while (elapsed := time.monotonic() - held_from) < seconds:
                await asyncio.sleep(min(1.0, seconds - elapsed))  # the hold itself: time passing
                peak = max(peak, usage(pid).rss)
            end = usage(pid)
            held = time.monotonic() - held_from
            still_open = sum(1 for client in clients if client.close_code is None)
            dropped = Counter(
                f"{client.close_code} {client.close_reason}".strip()
                for client in clients
                if client.close_code is not None
            )
            async with httpx.AsyncClient(base_url=base, timeout=timeout) as http:
                rooms = sorted({room for room, _ in names})
                listed = [(await http.get(f"/rooms/{r}/users")).json()["users"] for r in rooms]
            for reader in readers:
                reader.cancel()
        finally:
            for client in clients:
                client.transport.abort()  # the server's graceful stop is not what we measure
    return Report(
        connections=connections,
        compress=compress,
        held=held,
        ping_interval=ping_interval,
        baseline=baseline,
        connected=connected,
        end=end,
        peak_rss=peak,
        still_open=still_open,
        in_rooms=sum(len(users) for users in listed),
        connect_seconds=connect_seconds,
        dropped=dict(dropped.most_common()),
    )
