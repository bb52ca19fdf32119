"""Every open ``Peer`` of one app, made by ``Peers.open``: what a graceful shutdown flushes.

``open`` is how endpoints make a peer: each gets the app's queue size and close timeout, and is
listed here until it closes. A close that skipped the queue would overtake the frames still in
it: ``close_all`` (lesson 09) queues each peer's close *behind* what is already queued, and
waits while the queues drain.
"""

from __future__ import annotations

import asyncio

from fastapi import WebSocket

from course_server.realtime.closecodes import CloseCode
from course_server.realtime.fanout import Peer, PeerState


class Peers:
    """Every open ``Peer`` of one app (``app.state.peers``): what a graceful shutdown flushes.

    Peers add themselves in ``start()`` and leave when closed, so the set holds only live ones.
    ``queue_size`` and ``close_timeout`` are every peer's (see ``fanout.Peer``).
    """

    def __init__(self, *, queue_size: int = 256, close_timeout: float = 1.0) -> None:
        self._peers: set[Peer] = set()
        self.queue_size = queue_size
        self.close_timeout = close_timeout

    def open(self, websocket: WebSocket) -> Peer:
        """A started ``Peer`` for the accepted ``websocket``, listed here until it closes."""
        peer = Peer(
            websocket, queue_size=self.queue_size, close_timeout=self.close_timeout, registry=self
        )
        peer.start()
        return peer

    def __len__(self) -> int:
        return len(self._peers)

    def add(self, peer: Peer) -> None:
        self._peers.add(peer)

    def discard(self, peer: Peer) -> None:
        self._peers.discard(peer)

    async def close_all(
        self,
        code: int = CloseCode.GOING_AWAY,
        reason: str = "Server shutting down",
        idle: float = 1.0,
        limit: float = 5.0,
    ) -> int:
        """Close every peer after the frames queued for it; return how many were asked to.

        Waits while the queues keep draining, up to ``limit`` seconds in all, and gives up
        after ``idle`` seconds in which no queue got shorter: a client that stopped reading
        would otherwise hold the shutdown for the whole ``limit``. Peers still open then are
        left to the session registry, which closes them directly.
        """
        peers = [peer for peer in self._peers if peer.state is PeerState.OPEN]
        for peer in peers:
            peer.close(code, reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        waits = {asyncio.ensure_future(p.wait_closed()): p for p in tuple(self._peers)}
        try:
            while waits and loop.time() < deadline:
                backlog = sum(peer.queued for peer in waits.values())
                timeout = min(idle, deadline - loop.time())
                done, _ = await asyncio.wait(waits, timeout=timeout)
                for waiter in done:
                    del waits[waiter]
                if not done and sum(peer.queued for peer in waits.values()) >= backlog:
                    break  # nobody drained anything for ``idle`` seconds
        finally:
            for waiter in waits:
                waiter.cancel()
        return len(peers)
