"""Lesson 07: lesson 03's broadcast and private messages, across every process on one Redis.

The source chapter's own reason to scale out: user A on server 1 sends to user B, and server 1
does not know B, who is connected to server 2. ``SharedGroup`` and ``SharedDirectory`` are
lesson 03's ``Group`` and ``UserDirectory`` whose sending methods publish to Redis instead;
every process (the sender's included) receives each publication and delivers it to its own
connections with the lesson 03 method. The endpoints do not change, only what the app puts in
``app.state.broadcast`` (``backend.create_backend``).

Pub/sub only, as in the chapter: these endpoints keep no history, so what is published while a
process's subscription is down does not reach that process's clients. (The chat, lesson 07,
shows how a stream closes that gap.) One channel carries all of it, in one order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from course_server.lessons.broadcast import BroadcastState, UserDirectory
from course_server.realtime.fanout import Group, Peer
from course_server.scaling.link import FAILURES, RedisLink
from course_server.scaling.scripts import PREFIX
from course_server.scaling.worker import Worker

log = logging.getLogger("course_server.redis")

CHANNEL = PREFIX + "relay"

Event = dict[str, Any]


class Relay:
    """Publishes lesson 03's deliveries in order, and hands each one back to its kind's handler."""

    prefix = CHANNEL

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._handlers: dict[str, Callable[[Event], object]] = {}
        self._worker = Worker("relayed messages", self._send)
        link.listen(self)

    def handle(self, kind: str, handler: Callable[[Event], object]) -> None:
        self._handlers[kind] = handler

    def publish(self, kind: str, **fields: str) -> None:
        """Queue an event for every process; never awaits, like ``Group.broadcast``."""
        self._worker.submit(json.dumps({"kind": kind, **fields}))

    async def start(self) -> None:
        await self._link.subscriber.subscribe([CHANNEL])
        self._worker.start()

    async def aclose(self) -> None:
        await self._worker.aclose()

    async def on_message(self, channel: str, data: str) -> None:
        event = json.loads(data)
        self._handlers[event["kind"]](event)

    async def on_subscribed(self, channel: str) -> None:
        pass  # nothing to catch up: these endpoints keep no history

    def on_reconnected(self) -> None:
        pass  # nothing to catch up: these endpoints keep no history

    def on_beat(self, lost: bool) -> None:
        pass  # nothing registered in Redis to renew

    async def _send(self, batch: list[str]) -> None:
        pipe = self._link.client.pipeline(transaction=False)
        for event in batch:
            pipe.publish(CHANNEL, event)
        try:
            await pipe.execute()
        except FAILURES as exc:
            # No error frame to send: lesson 03's protocol has none. Say it in the log.
            log.warning("%d relayed messages lost: Redis unreachable (%s)", len(batch), exc)


class SharedGroup(Group):
    """Lesson 03's ``Group`` whose ``broadcast`` reaches the group on every process."""

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self._relay = relay
        relay.handle("everyone", lambda event: Group.broadcast(self, event["text"]))

    def broadcast(self, message: Any, exclude: Peer | None = None) -> int:
        if exclude is not None or not isinstance(message, str):
            raise TypeError("a shared group relays text to everyone")
        self._relay.publish("everyone", text=message)
        return len(self)  # queued here once Redis brings it back; elsewhere, unknown


class SharedDirectory(UserDirectory):
    """Lesson 03's ``UserDirectory`` whose sends reach a user's devices on every process."""

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self._relay = relay
        relay.handle("user", lambda e: UserDirectory.send_to(self, e["to"], e["text"]))
        relay.handle("all_but", lambda e: UserDirectory.send_to_all_but(self, e["but"], e["text"]))

    def send_to(self, user_id: str, message: str) -> int:
        self._relay.publish("user", to=user_id, text=message)
        return self.devices(user_id)

    def send_to_all_but(self, user_id: str, message: str) -> int:
        self._relay.publish("all_but", but=user_id, text=message)
        return len(self) - (user_id in self)


def shared_state(relay: Relay) -> BroadcastState:
    """Lesson 03's broadcast state, with every send going through ``relay``."""
    return BroadcastState(everyone=SharedGroup(relay), users=SharedDirectory(relay))
