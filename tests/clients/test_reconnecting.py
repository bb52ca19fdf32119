"""``course_server.clients.reconnecting``: retries, resume, dedupe and resend, against real servers.

The server is stopped and started again under the clients (same app, same port), a connection
is cut without a close frame, a server comes back with no memory: each time, every message
arrives once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from conftest import eventually, wait_timeout

from course_server import RunningServer, Settings, create_app, start
from course_server.clients.reconnecting import (
    Connected,
    Disconnected,
    ReconnectingClient,
    Refused,
)
from course_server.realtime.backoff import Backoff
from course_server.realtime.messages import MessageEvent, ResumeFrame

pytestmark = pytest.mark.anyio

FAST = Backoff(base=0.02, cap=0.2)


def client(server: RunningServer, path: str, **options: object) -> ReconnectingClient:
    return ReconnectingClient(server.ws(path), backoff=FAST, **options)  # type: ignore[arg-type]


async def contents(events: AsyncIterator[object], count: int) -> list[str]:
    """The content of the next ``count`` messages, in order of arrival."""
    found: list[str] = []
    async with asyncio.timeout(wait_timeout(10)):
        async for event in events:
            if isinstance(event, MessageEvent):
                found.append(event.content)
                if len(found) == count:
                    break
    return found


# Against a live server ----------------------------------------------------------------------


async def test_a_server_restart_loses_nothing_and_doubles_nothing(settings: Settings) -> None:
    app = create_app(settings)
    server = start(app, name="reconnecting-restart")
    try:
        async with (
            client(server, "/chat/general/ana") as ana,
            client(server, "/chat/general/ben") as ben,
        ):
            await ana.wait_open()
            await ben.wait_open()
            for n in range(10):
                ana.send(f"m{n}")
            async with asyncio.timeout(wait_timeout()):
                await ana.wait_acked()
            port = server.port
            await asyncio.to_thread(server.stop)
            for n in range(10, 20):  # said while the server is down: they wait in the outbox
                ana.send(f"m{n}")
            assert ana.pending == 10
            server = await asyncio.to_thread(start, app, name="reconnecting-restart", port=port)
            assert await contents(ben, 20) == [f"m{n}" for n in range(20)]
            async with asyncio.timeout(wait_timeout()):
                await ana.wait_acked()
            assert (ana.connections, ben.connections) == (2, 2)
    finally:
        server.stop()


async def test_a_cut_connection_resends_what_was_not_acked_once(server: RunningServer) -> None:
    async with (
        client(server, "/chat/general/ana") as ana,
        client(server, "/chat/general/ben") as ben,
    ):
        await ana.wait_open()
        await ben.wait_open()
        for n in range(30):
            ana.send(f"m{n}")
        await eventually(lambda: ana.pending <= 25)
        ana.drop()  # mid-stream: more messages in flight, some posted, their acks lost
        assert await contents(ben, 30) == [f"m{n}" for n in range(30)]
        async with asyncio.timeout(wait_timeout()):
            await ana.wait_acked()


async def test_a_reconnect_resumes_after_the_last_id_seen(server: RunningServer) -> None:
    async with (
        client(server, "/chat/general/ana") as ana,
        client(server, "/chat/general/ben") as ben,
    ):
        await ana.wait_open()
        await ben.wait_open()
        ana.send("before")
        assert await contents(ben, 1) == ["before"]
        ben.drop()
        ana.send("while ben was away")
        events = []
        async with asyncio.timeout(wait_timeout()):
            async for event in ben:
                events.append(event)
                if isinstance(event, MessageEvent):
                    break
        kinds = [type(e).__name__ for e in events if not isinstance(e, Disconnected)]
        # The leave/join of ben's own reconnect may come before or after ana's message.
        assert kinds[:2] == ["Connected", "ResumeFrame"]
        resume = next(e for e in events if isinstance(e, ResumeFrame))
        connected = next(e for e in events if isinstance(e, Connected))
        assert resume.complete and resume.after == connected.last_id
        assert events[-1].content == "while ben was away"  # type: ignore[union-attr]


async def test_a_server_with_no_memory_is_followed_not_ignored(settings: Settings) -> None:
    server = start(name="reconnecting-amnesia", settings=settings)
    try:
        async with client(server, "/chat/general/ben") as ben:
            await ben.wait_open()
            async with client(server, "/chat/general/ana") as ana:
                for n in range(5):
                    ana.send(f"old {n}")
                assert await contents(ben, 5) == [f"old {n}" for n in range(5)]
            port = server.port
            await asyncio.to_thread(server.stop)
            # A new app: ids start at 1 again, below every id ben has seen.
            server = await asyncio.to_thread(
                start, name="reconnecting-amnesia", settings=settings, port=port
            )
            async with client(server, "/chat/general/ana") as ana:
                ana.send("new")
                assert await contents(ben, 1) == ["new"]
    finally:
        server.stop()


async def test_a_bad_name_ends_the_iteration_instead_of_retrying(server: RunningServer) -> None:
    async with client(server, "/chat/general/not%20ok") as bad:
        with pytest.raises(Refused) as refused:
            async with asyncio.timeout(wait_timeout()):
                async for _ in bad:
                    pass
    assert refused.value.code == 1008
    assert bad.connections == 1


async def test_a_name_taken_by_someone_else_is_refused(server: RunningServer) -> None:
    async with client(server, "/chat/general/ana") as first:
        await first.wait_open()
        async with client(server, "/chat/general/ana") as second:
            with pytest.raises(Refused) as refused:
                async with asyncio.timeout(wait_timeout()):
                    async for _ in second:
                        pass
    assert (refused.value.code, refused.value.reason) == (4000, "Username taken")
