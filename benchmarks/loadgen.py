"""The load generator: receivers in worker processes, and the one sender.

Receivers are picows clients (a C WebSocket implementation: a frame costs the client about a
microsecond, so the client is not what gets measured). A worker process holds many of them on
one event loop (uvloop when installed) and talks to the controller over lines on stdin/stdout:

    worker → controller   ``connected``, ``synced``, ``done``, then ``result {json}``
    controller → worker   ``stop`` (or end of file): stop waiting, report, disconnect

``done`` comes the moment every receiver that keeps reading has every message (or is gone),
before the slow receivers are looked at, so the controller can read the server's CPU time then.
The worker disconnects only on ``stop``: a leave storm must not land in the measurement.

A receiver records, for every benchmark message, its latency (now minus the sender's stamp;
``time.monotonic_ns`` is one clock for the whole machine), and counts duplicates and messages
that arrived after a later one. A *slow* receiver stops reading once the run is synced; at the
end it reads again, to learn how the server treated it (closed with which code, or still open).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import sys
import time
import zlib
from array import array
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from benchmarks.wires import MARK, WIRES, Wire

DEFLATE_OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
_TAIL = b"\x00\x00\xff\xff"  # what permessage-deflate strips from each message (RFC 7692)
_TEXT, _CLOSE = WSMsgType.TEXT, WSMsgType.CLOSE
SLOW_RCVBUF = 8192  # a slow receiver's socket buffer: a phone on a bad network, not a datacenter


def text_of(frame: WSFrame, inflater: Any) -> str:
    """A text frame's payload; compressed frames (RSV1 set) go through ``inflater`` first."""
    if frame.rsv1:
        return inflater.decompress(frame.get_payload_as_bytes() + _TAIL).decode()
    return frame.get_payload_as_utf8_text()


class Crowd:
    """One worker's receivers, and the two moments the worker waits for."""

    def __init__(self, messages: int, wire: Wire) -> None:
        self.messages = messages
        self.wire = wire
        self.receivers: list[Receiver] = []
        self.synced = 0
        self.finished = 0  # fast receivers that have every message, or are gone
        self.all_synced = asyncio.Event()
        self.all_done = asyncio.Event()

    @property
    def fast(self) -> list[Receiver]:
        return [r for r in self.receivers if not r.slow]

    def on_synced(self) -> None:
        self.synced += 1
        if self.synced == len(self.receivers):
            self.all_synced.set()

    def on_finished(self, receiver: Receiver) -> None:
        if receiver.slow or receiver.finished:
            return
        receiver.finished = True
        self.finished += 1
        if self.finished == len(self.fast):
            self.all_done.set()


class Receiver(WSListener):
    """One client of the room: what it received, how late, in what order."""

    def __init__(self, crowd: Crowd, slow: bool = False) -> None:
        self.crowd = crowd
        self.slow = slow
        self.transport: WSTransport | None = None
        self.latencies = array("q")
        self.seen = bytearray(crowd.messages)
        self.top = -1
        self.wire_bytes = 0  # payload bytes of benchmark messages, as they came (compressed?)
        self.duplicates = 0
        self.out_of_order = 0
        self.last_ns = 0
        self.synced = False
        self.finished = False
        self.close_code: int | None = None
        self.gone = asyncio.Event()
        self.inflater = zlib.decompressobj(-15)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        now = time.monotonic_ns()
        kind = frame.msg_type
        if kind is _CLOSE:
            self.close_code = frame.get_close_code().value
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind is not _TEXT:
            return
        text = text_of(frame, self.inflater)
        start = text.find(MARK)
        if start < 0:
            reply = self.crowd.wire.control(text)
            if reply is not None:
                transport.send(_TEXT, reply.encode())
            return
        start += 3
        colon = text.find(":", start)
        seq = int(text[start:colon])
        if seq < 0:
            if not self.synced:
                self.synced = True
                self.crowd.on_synced()
            return
        self.wire_bytes += frame.payload_size
        if self.seen[seq]:
            self.duplicates += 1
            return
        self.seen[seq] = 1
        if seq < self.top:
            self.out_of_order += 1
        else:
            self.top = seq
        self.latencies.append(now - int(text[colon + 1 : text.find(":", colon + 1)]))
        self.last_ns = now
        if len(self.latencies) == self.crowd.messages:
            self.crowd.on_finished(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.close_code is None:
            self.close_code = 1006  # the connection ended without a close frame
        self.gone.set()
        self.crowd.on_finished(self)


def _small_buffer_socket(_url: Any) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    sock.setblocking(False)
    return sock


async def connect(url: str, listener: WSListener, deflate: bool, small_buffer: bool) -> None:
    await ws_connect(
        lambda: listener,
        url,
        extra_headers=DEFLATE_OFFER if deflate else None,
        socket_factory=_small_buffer_socket if small_buffer else None,
        websocket_handshake_timeout=30,
    )


async def _lines(stop: asyncio.Event) -> None:
    """Set ``stop`` when the controller says so, or goes away (end of file)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            stop.set()
            return


async def _first(event: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait for ``event`` or ``stop``; True if ``event`` came first."""
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    return event.is_set()


def _say(line: str) -> None:
    """One line to the controller, whole: a long one may take several writes to the pipe."""
    data = memoryview((line + "\n").encode())
    fd = sys.stdout.fileno()
    os.set_blocking(fd, True)  # the event loop may have made it non-blocking
    while data:
        data = data[os.write(fd, data) :]


async def work(job: dict[str, Any]) -> None:
    """Connect ``job["urls"]``, sync, receive, report; ``job["slow"]`` are the indices to stall."""
    crowd = Crowd(job["messages"], WIRES[job["wire"]])
    slow = set(job["slow"])
    crowd.receivers = [Receiver(crowd, slow=i in slow) for i in range(len(job["urls"]))]
    stop = asyncio.Event()
    stdin = asyncio.create_task(_lines(stop))
    gate = asyncio.Semaphore(64)  # connect in waves: a thousand SYNs at once overflow backlogs

    async def open_one(url: str, receiver: Receiver) -> None:
        async with gate:
            await connect(url, receiver, job["deflate"], receiver.slow)

    await asyncio.gather(*map(open_one, job["urls"], crowd.receivers))
    _say("connected")
    synced = await _first(crowd.all_synced, stop)
    for receiver in crowd.receivers:
        if receiver.slow and receiver.transport is not None:
            receiver.transport.underlying_transport.pause_reading()
    cpu = time.process_time()
    _say("synced")
    if synced:
        await _first(crowd.all_done, stop)
    cpu = time.process_time() - cpu
    _say("done")
    fast = crowd.fast
    latencies = array("q")
    for receiver in fast:
        latencies.extend(receiver.latencies)
    report = {
        "synced": synced,
        "received": len(latencies),
        "out_of_order": sum(r.out_of_order for r in fast),
        "duplicates": sum(r.duplicates for r in fast),
        "wire_bytes": sum(r.wire_bytes for r in fast),
        "last_ns": max((r.last_ns for r in fast), default=0),
        "cpu": cpu,
        "closed_early": sorted(r.close_code for r in fast if r.close_code is not None),
        "latencies": base64.b64encode(latencies.tobytes()).decode(),
    }
    # Let the stalled receivers read again: does the server still hold them, or closed them?
    stalled = [r for r in crowd.receivers if r.slow]
    for receiver in stalled:
        if receiver.transport is not None:
            receiver.transport.underlying_transport.resume_reading()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(job.get("slow_grace", 3.0)):
            await asyncio.gather(*(r.gone.wait() for r in stalled))
    report["slow"] = [
        {"received": len(r.latencies), "close_code": r.close_code if r.gone.is_set() else None}
        for r in stalled
    ]
    _say("result " + json.dumps(report))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            await stop.wait()
    stdin.cancel()
    for receiver in crowd.receivers:
        if receiver.transport is not None:
            receiver.transport.disconnect(graceful=False)


def main() -> None:
    job = json.loads(sys.argv[1])
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    runner(work(job))


if __name__ == "__main__":
    main()
